"""Alembic version scripts, one per schema change, in `down_revision` order."""
