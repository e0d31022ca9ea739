"""The service memory benchmark, end to end at a tiny size: it must measure what it claims
(every configuration in its own process, the real service placing work, figures that add up).
Speed and the 2 GiB budget are not checked here; the benchmark prints those figures."""

from __future__ import annotations

import pytest
from benchmarks.service_memory import Options, main, render, run

NODES = 20
QUEUED = 200
STEPS = 4


def test_every_configuration_reports_memory_and_scheduled_work() -> None:
    options = Options(nodes=NODES, queued=QUEUED, queue_limits=(None, 50), steps=STEPS)

    results = run(options)

    assert [r.queue_limit for r in results] == [500, 50]  # the stored default, then the given
    for result in results:
        assert not result.traced
        assert result.rss_imports_bytes > 0
        assert result.rss_startup_bytes > 0
        assert result.rss_after_fill_bytes > 0
        assert result.peak_rss_bytes > 0
        assert result.fill_peak_rss_bytes > 0
        assert result.nodes_known == NODES
        assert [s.step for s in result.steps] == list(range(1, STEPS + 1))
        assert all(s.rss_bytes > 0 and s.wall_seconds >= s.service_seconds for s in result.steps)
        assert all(s.scheduled <= result.queue_limit for s in result.steps)
        assert result.scheduled > 0
        # Placed jobs left the queue and are still running (their main step runs an hour).
        assert result.queue_left == QUEUED - result.scheduled
        assert result.steps[-1].running_executions == result.scheduled
    default, limited = results
    assert default.scheduled > limited.steps[-1].scheduled  # the limit bounds each turn
    text = render(options, results)
    assert "queue_limit 500 (default)" in text
    assert "queue_limit 50 " in text


def test_the_command_prints_tables_and_traced_allocation_sites(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--nodes", str(NODES), "--queued", str(QUEUED), "--queue-limits", "50"]

    assert main([*argv, "--steps", "3", "--trace"]) == 0

    out = capsys.readouterr().out
    assert "peak RSS" in out
    assert "queue_limit 50: peak" in out
    assert "the 2 GiB budget" in out
    assert "tracemalloc, queue_limit 50: traced peak" in out
    assert " MiB " in out.split("largest sites alive after the last turn:")[1]
