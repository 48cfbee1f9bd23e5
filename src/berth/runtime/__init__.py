"""Runtimes run replicas. One `Runtime` protocol; one class per backend."""
