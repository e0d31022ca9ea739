"""Cluster backends behind one protocol: local processes, dask, mesos, simulated."""
