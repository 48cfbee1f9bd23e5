"""E2E Networks TIR dialect: serving/inference model endpoints."""
