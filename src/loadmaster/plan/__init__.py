"""`loadmaster plan`: one dry-run cycle over a cluster snapshot (docs/plan-format.md)."""
