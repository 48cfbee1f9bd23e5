"""Use cases: the only way in to change state. The native API and every dialect call these."""
