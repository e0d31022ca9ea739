"""Persistence adapters behind the core's `SchedulingStore` port.

`memory.MemoryStore` keeps the port in memory (dry runs, the simulator, tests);
`sql.SqlStore` is the durable store on SQLite or PostgreSQL, with the service's repositories.
Nothing is imported here, so that using the memory store never loads SQLAlchemy.
"""
