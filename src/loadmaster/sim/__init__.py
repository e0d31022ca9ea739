"""Trace replay: real workloads driven through the production scheduling cycle.

`loaders` turns trace files into a `Workload`, `engine` replays it on a simulated cluster under
a virtual clock, `metrics` and `plots` summarise the run, `cli` is `loadmaster simulate`.
"""
