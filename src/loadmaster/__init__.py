"""loadmaster: a cluster scheduler for batch job executions."""

__version__ = "0.1.0"
