"""Persistence: SQLAlchemy 2 Core repositories with Alembic migrations."""
