"""The `loadmaster` command line."""
