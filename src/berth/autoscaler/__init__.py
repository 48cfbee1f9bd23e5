"""The autoscaler: per deployment region, metrics with ages in, a desired replica count out."""
