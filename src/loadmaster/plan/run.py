"""Run the plan: parse, build, one cycle, document."""

from __future__ import annotations

from typing import Any

from loadmaster.plan.builder import RecordingClient, build_state
from loadmaster.plan.output import plan_document
from loadmaster.plan.snapshot import parse_snapshot
from loadmaster.scheduling.placement import PlacementEngine


def plan_from_text(text: str | bytes, placement: PlacementEngine | None = None) -> dict[str, Any]:
    """One dry-run cycle over a snapshot; raises SnapshotError for a bad one."""
    state = build_state(parse_snapshot(text), placement)
    client = RecordingClient()
    report = state.manager.run_cycle(client, state.when)
    return plan_document(report, state.declined_at_ingestion)
