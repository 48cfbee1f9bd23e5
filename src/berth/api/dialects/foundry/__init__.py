"""Palantir Foundry live deployments (preview API), translated onto Berth's services."""
