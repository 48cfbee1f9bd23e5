"""The data plane: authenticate, route, balance, stream, hold requests while scaling from zero."""
