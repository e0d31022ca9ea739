"""The shipped plan examples, one per reason code, and what their plans must say."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadmaster.plan.run import plan_from_text

PLAN_DIR = Path(__file__).resolve().parents[2] / "examples" / "plan"


def plan_of(name: str) -> dict[str, Any]:
    return plan_from_text((PLAN_DIR / f"{name}.json").read_text())


def reasons(doc: dict[str, Any]) -> dict[int, str]:
    return {u["queue_id"]: u["reason"] for u in doc["unscheduled"]}


def placed(doc: dict[str, Any]) -> dict[int, int]:
    return {s["queue_id"]: s["node_id"] for s in doc["scheduled"]}


def all_offer_ids(name: str) -> list[str]:
    snapshot = json.loads((PLAN_DIR / f"{name}.json").read_text())
    return sorted(o["id"] for o in snapshot.get("offers", []))


@pytest.mark.parametrize("name", sorted(p.stem for p in PLAN_DIR.glob("*.json")))
def test_every_offer_is_launched_or_declined_exactly_once(name: str) -> None:
    doc = plan_of(name)
    used = [o for launch in doc["launches"] for o in launch["offer_ids"]]
    assert sorted(used + doc["declined_offers"]) == all_offer_ids(name)


@pytest.mark.parametrize("name", sorted(p.stem for p in PLAN_DIR.glob("*.json")))
def test_every_entry_has_one_outcome(name: str) -> None:
    snapshot = json.loads((PLAN_DIR / f"{name}.json").read_text())
    doc = plan_of(name)
    outcomes = (
        [s["queue_id"] for s in doc["scheduled"]]
        + doc["canceled"]
        + [u["queue_id"] for u in doc["unscheduled"]]
    )
    assert len(outcomes) == len(set(outcomes))
    assert len(outcomes) + doc["beyond_queue_limit"] == len(snapshot.get("queue", []))


# name, expected placements {queue id: node id}, expected reasons {queue id: reason}
CASES = [
    ("scheduled-best-fit", {12: 1, 11: 2}, {}),
    ("reason-scheduler-paused", {}, {11: "SCHEDULER_PAUSED"}),
    ("reason-no-ready-nodes", {}, {11: "NO_READY_NODES"}),
    ("reason-waiting-system-tasks", {}, {11: "WAITING_SYSTEM_TASKS"}),
    ("reason-job-type-paused", {12: 1}, {11: "JOB_TYPE_PAUSED"}),
    (
        "reason-job-type-limit",
        {11: 1},
        {12: "JOB_TYPE_LIMIT", 13: "JOB_TYPE_LIMIT", 14: "JOB_TYPE_LIMIT"},
    ),
    ("reason-invalid-resources", {13: 1}, {11: "INVALID_RESOURCES", 12: "INVALID_RESOURCES"}),
    ("reason-insufficient-resources", {12: 2}, {11: "INSUFFICIENT_RESOURCES"}),
    ("reason-unknown-job-type", {12: 1}, {11: "UNKNOWN_JOB_TYPE"}),
    ("reason-missing-workspace", {12: 1}, {11: "MISSING_WORKSPACE"}),
    ("reason-node-reserved", {12: 2}, {11: "NODE_RESERVED", 13: "NODE_RESERVED"}),
    ("reason-no-node-fits", {11: 1}, {12: "NO_NODE_FITS"}),
    ("canceled-and-lifo", {13: 1}, {}),
    ("gpus-and-custom-resources", {11: 2, 12: 2, 14: 1}, {13: "NO_NODE_FITS"}),
    ("running-work-first", {}, {11: "NODE_RESERVED"}),
]


@pytest.mark.parametrize(
    ("name", "expected_placed", "expected_reasons"), CASES, ids=[c[0] for c in CASES]
)
def test_example_decisions(
    name: str, expected_placed: dict[int, int], expected_reasons: dict[int, str]
) -> None:
    doc = plan_of(name)
    assert placed(doc) == expected_placed
    assert reasons(doc) == expected_reasons
    assert doc["job_executions_scheduled"] == len(expected_placed)


def test_best_fit_prefers_the_node_left_able_to_host_fewest_job_types() -> None:
    doc = plan_of("scheduled-best-fit")
    scores = {s["queue_id"]: s["score"] for s in doc["scheduled"]}
    # render (4 cpus) on the 16-cpu node leaves room for both job types; ingest then packs a
    # 2-cpu node (score 1) rather than the big one (score 2); nodes 2 and 3 tie and 2 is first.
    assert scores == {12: 2, 11: 1}
    assert doc["declined_offers"] == ["offer_3"]
    assert doc["tasks_launched"] == 2
    first = doc["launches"][0]["tasks"][0]
    assert first["kind"] == "pull" and first["queue_id"] == 12 and first["execution_id"] is None


def test_reservations_name_their_entry_and_score() -> None:
    doc = plan_of("reason-node-reserved")
    assert doc["reservations"] == [
        {"node_id": 1, "queue_id": 11, "score": 2},
        {"node_id": 2, "queue_id": 13, "score": 2},
    ]
    assert doc["declined_offers"] == ["offer_1"]  # the reserved node takes nothing new


def test_running_work_first_launches_node_tasks_and_next_tasks_and_loses_offline_work() -> None:
    doc = plan_of("running-work-first")
    (launch,) = doc["launches"]
    assert launch["offer_ids"] == ["offer_old", "offer_1"]  # the aged offer first
    assert [t["id"] for t in launch["tasks"]] == [
        "cleanup-1",
        "health-1",
        "loadmaster_job_plan_7x1_main",
        "loadmaster_job_plan_8x1_main",
    ]
    assert [t["execution_id"] for t in launch["tasks"][2:]] == [7, 8]
    assert doc["lost_executions"] == [9]
    assert doc["tasks_launched"] == 4


def test_paused_scheduler_declines_every_offer_and_launches_nothing() -> None:
    doc = plan_of("reason-scheduler-paused")
    assert doc["declined_offers"] == ["offer_1"]
    assert doc["launches"] == [] and doc["tasks_launched"] == 0


def test_lifo_with_queue_limit_counts_what_it_did_not_consider() -> None:
    doc = plan_of("canceled-and-lifo")
    assert doc["canceled"] == [12]
    assert doc["beyond_queue_limit"] == 2


def test_warnings_name_the_job_type() -> None:
    titles = {w["title"] for w in plan_of("reason-insufficient-resources")["warnings"]}
    assert titles == {"Insufficient Resources for render"}
    invalid = plan_of("reason-invalid-resources")["warnings"]
    assert [(w["name"], w["description"]) for w in invalid] == [
        (
            "INVALID_RESOURCES",
            "Cluster does not have one or more of the following resources: fpga, sharedmem.",
        )
    ]


def test_cluster_resources_are_what_the_checks_compared_against() -> None:
    doc = plan_of("reason-insufficient-resources")
    assert doc["cluster_resources"]["largest_node"]["cpus"] == 16.0  # agent_1's declared total
    assert doc["cluster_resources"]["total"]["cpus"] == 20.0


def test_gpu_entries_only_go_where_gpus_are() -> None:
    doc = plan_of("gpus-and-custom-resources")
    assert doc["cluster_resources"]["total"]["foo"] == 4.0


@pytest.mark.parametrize("output", ["json", "table"])
def test_cli_prints_the_plan(output: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadmaster",
            "plan",
            str(PLAN_DIR / "scheduled-best-fit.json"),
            "--output",
            output,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    if output == "json":
        assert json.loads(result.stdout)["job_executions_scheduled"] == 2
    else:
        assert "Scheduled" in result.stdout and "offer_3" in result.stdout


def test_cli_reads_standard_input() -> None:
    text = (PLAN_DIR / "reason-no-node-fits.json").read_text()
    result = subprocess.run(
        [sys.executable, "-m", "loadmaster", "plan", "-", "-o", "json"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert reasons(json.loads(result.stdout)) == {12: "NO_NODE_FITS"}


@pytest.mark.parametrize("name", sorted(p.stem for p in PLAN_DIR.glob("*.json")))
def test_fast_engine_gives_the_same_plan_for_every_example(name: str) -> None:
    from loadmaster.scheduling.engines import placement_engine

    text = (PLAN_DIR / f"{name}.json").read_text()
    reference = plan_from_text(text, placement_engine("reference"))
    fast = plan_from_text(text, placement_engine("fast"))
    assert fast.pop("engine") == "fast" and reference.pop("engine") == "reference"
    assert fast == reference


def test_cli_engine_option() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadmaster",
            "plan",
            str(PLAN_DIR / "reason-node-reserved.json"),
            "--engine",
            "fast",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and json.loads(result.stdout)["engine"] == "fast"
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadmaster",
            "plan",
            str(PLAN_DIR / "reason-node-reserved.json"),
            "--engine",
            "x",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and bad.stdout == ""
