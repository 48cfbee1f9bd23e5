"""Berth: self-hosted model inference endpoints."""

__version__ = "0.1.0"
