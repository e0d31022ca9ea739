"""Alembic environment and version scripts of the store, applied by `store.migrate` at open."""
