"""Scale GP models (v5): launch models as Berth deployments, plus inference on them."""
