"""Safety properties of one cycle over random snapshots."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from tests.scheduling.snapshots import snapshots

from loadmaster.plan.run import plan_from_text
from loadmaster.resources import Resources, total

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(snapshot: dict[str, Any]) -> dict[str, Any]:
    return plan_from_text(json.dumps(snapshot))


@SETTINGS
@given(snapshots())
def test_every_offer_is_used_or_declined_exactly_once(snapshot: dict[str, Any]) -> None:
    doc = run(snapshot)
    used = [o for launch in doc["launches"] for o in launch["offer_ids"]]
    assert Counter(used + doc["declined_offers"]) == Counter(o["id"] for o in snapshot["offers"])


@SETTINGS
@given(snapshots())
def test_launched_tasks_never_exceed_the_offers_they_run_on(snapshot: dict[str, Any]) -> None:
    doc = run(snapshot)
    offers = {o["id"]: Resources(o["resources"]) for o in snapshot["offers"]}
    for launch in doc["launches"]:
        offered = total(offers[o] for o in launch["offer_ids"])
        needed = total(Resources(t["resources"]) for t in launch["tasks"])
        assert offered.is_sufficient_to_meet(needed), (launch, offered, needed)
        remaining = offered.subtract(needed)
        assert all(value >= -1e-9 for _, value in remaining.items())


@SETTINGS
@given(snapshots())
def test_no_entry_is_scheduled_twice_and_each_has_one_outcome(snapshot: dict[str, Any]) -> None:
    doc = run(snapshot)
    outcomes = (
        [s["queue_id"] for s in doc["scheduled"]]
        + doc["canceled"]
        + [u["queue_id"] for u in doc["unscheduled"]]
    )
    assert len(outcomes) == len(set(outcomes))
    assert len(outcomes) + doc["beyond_queue_limit"] == len(snapshot["queue"])
    pulls = [
        t["queue_id"]
        for launch in doc["launches"]
        for t in launch["tasks"]
        if t["queue_id"] is not None
    ]
    assert len(pulls) == len(set(pulls))


@SETTINGS
@given(snapshots())
def test_job_type_limits_hold(snapshot: dict[str, Any]) -> None:
    doc = run(snapshot)
    entries = {q["id"]: q for q in snapshot["queue"]}
    placed = Counter(entries[s["queue_id"]]["job_type_id"] for s in doc["scheduled"])
    running = Counter(e["job_type_id"] for e in snapshot["running_executions"])
    for job_type in snapshot["job_types"]:
        limit = job_type["max_scheduled"]
        if limit is not None:
            assert placed[job_type["id"]] <= max(limit - running[job_type["id"]], 0)
        if job_type["is_paused"]:
            assert placed[job_type["id"]] == 0


@SETTINGS
@given(snapshots())
def test_reserved_node_receives_no_lower_priority_entry(snapshot: dict[str, Any]) -> None:
    doc = run(snapshot)
    entries = {q["id"]: q for q in snapshot["queue"]}
    on_node = defaultdict(list)
    for s in doc["scheduled"]:
        on_node[s["node_id"]].append(entries[s["queue_id"]])
    for reservation in doc["reservations"]:
        reserved_priority = entries[reservation["queue_id"]]["priority"]
        for entry in on_node[reservation["node_id"]]:
            assert entry["priority"] <= reserved_priority


@SETTINGS
@given(snapshots())
def test_nothing_new_runs_where_it_may_not(snapshot: dict[str, Any]) -> None:
    doc = run(snapshot)
    states = {n["id"]: n["state"] for n in snapshot["nodes"]}
    for s in doc["scheduled"]:
        assert states[s["node_id"]] == "READY"
        assert not snapshot["scheduler"]["is_paused"]


@SETTINGS
@given(snapshots())
def test_same_input_same_plan(snapshot: dict[str, Any]) -> None:
    assert run(snapshot) == run(snapshot)
