"""Persistence adapters behind the core's `SchedulingStore` port."""
