"""Fixtures the local backend's tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .contract import Cluster
from .local_harness import AGENT, OTHER, LocalHarness, make_harness


@pytest.fixture
def harness(tmp_path: Path) -> LocalHarness:
    """Two agents, so that tests can tell agents apart."""
    return make_harness(tmp_path, [AGENT, OTHER])


@pytest.fixture
def cluster(harness: LocalHarness) -> Iterator[Cluster]:
    cluster = Cluster(harness)
    try:
        yield cluster
    finally:
        cluster.close()
