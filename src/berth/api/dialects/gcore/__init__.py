"""Gcore Everywhere Inference (cloud/v3 inference deployments)."""
