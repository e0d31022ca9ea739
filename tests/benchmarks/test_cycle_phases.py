"""The phase breakdown of a cycle: every step of a cycle that did work is measured, nested
steps are not counted twice, and the timers are gone afterwards."""

from __future__ import annotations

import json

from benchmarks.generator import Size, generate
from benchmarks.phases import STEPS, breakdown

from loadmaster.plan.run import plan_from_text
from loadmaster.scheduling.engines import placement_engine
from loadmaster.scheduling.fast import FastSession
from loadmaster.scheduling.manager import SchedulingManager

SIZE = Size("tiny", 30, 8, 150)


def test_every_step_is_timed_and_the_rows_add_up() -> None:
    snapshot = generate(SIZE, 3)

    result = breakdown(snapshot)

    plan = plan_from_text(json.dumps(snapshot), placement_engine("fast"))
    placed = len(plan["scheduled"])
    assert placed > 0
    assert result.decided == SIZE.queued
    calls = {label: n for label, _, n in result.steps}
    assert calls["queue pass: placement decisions"] >= placed
    assert calls["commit: execution creation"] == placed
    for label, _, _ in STEPS:
        assert calls[label] >= 1, label
    timed = [seconds for label, seconds, _ in result.steps if not label.startswith("other")]
    assert all(seconds >= 0.0 for seconds in timed)
    # exclusive: a step nested in another (placement in the queue pass) is not counted twice,
    # so the timed steps together never exceed the cycle they ran in
    assert sum(timed) <= result.total + 1e-6


def test_the_wrappers_are_removed_afterwards() -> None:
    snapshot = generate(SIZE, 4)
    before = plan_from_text(json.dumps(snapshot), placement_engine("fast"))
    originals = (SchedulingManager.__dict__["_process_queue"], FastSession.__dict__["place"])

    breakdown(snapshot)

    assert (
        SchedulingManager.__dict__["_process_queue"],
        FastSession.__dict__["place"],
    ) == originals
    after = plan_from_text(json.dumps(snapshot), placement_engine("fast"))
    assert after == before
