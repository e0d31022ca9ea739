"""One scheduling cycle: pure, deterministic, driven by `when` and the state passed in."""
