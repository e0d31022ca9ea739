"""The scheduler service: configuration, workloads, the daemon loop and its wiring."""
