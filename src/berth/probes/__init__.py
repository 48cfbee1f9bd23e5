"""Startup, readiness and liveness probes, run by Berth for runtimes without native probes."""
