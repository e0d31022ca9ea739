"""Domain records and their state machines; standard library only, no I/O."""
