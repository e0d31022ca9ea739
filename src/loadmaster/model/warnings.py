"""Scheduler warnings: named conditions with activation, refresh and expiry (spec §9.2).

A warning is keyed by its name and subject (e.g. INSUFFICIENT_RESOURCES for job type
"ingest"), so the same problem on two job types shows twice, and refreshed each time the
condition is seen again; one not refreshed for an hour expires.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

WARNING_EXPIRY = timedelta(hours=1)


@dataclass(slots=True, frozen=True)
class SchedulerWarning:
    name: str
    title: str
    description: str


INVALID_RESOURCES = "INVALID_RESOURCES"
INSUFFICIENT_RESOURCES = "INSUFFICIENT_RESOURCES"
WAITING_SYSTEM_TASKS = "WAITING_SYSTEM_TASKS"
UNKNOWN_JOB_TYPE = "UNKNOWN_JOB_TYPE"


def invalid_resources(job_type: str, names: list[str]) -> SchedulerWarning:
    return SchedulerWarning(
        INVALID_RESOURCES,
        f"Invalid Resources for {job_type}",
        f"Cluster does not have one or more of the following resources: {', '.join(names)}.",
    )


def insufficient_resources(job_type: str, names: list[str]) -> SchedulerWarning:
    return SchedulerWarning(
        INSUFFICIENT_RESOURCES,
        f"Insufficient Resources for {job_type}",
        f"No node has enough of this resource for the job type: {', '.join(names)}.",
    )


def waiting_system_tasks(count: int) -> SchedulerWarning:
    return SchedulerWarning(
        WAITING_SYSTEM_TASKS,
        "Waiting System Tasks",
        f"No new jobs scheduled due to {count} waiting system task(s)",
    )


def unknown_job_type(job_type_id: int) -> SchedulerWarning:
    return SchedulerWarning(
        UNKNOWN_JOB_TYPE,
        "Unknown Job Type",
        f"A job is queued with a job type {job_type_id} that is not known to the scheduler",
    )


@dataclass(slots=True)
class ActiveWarning:
    warning: SchedulerWarning
    subject: str
    started: datetime
    last_updated: datetime

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.warning.name,
            "title": self.warning.title,
            "description": self.warning.description,
            "started": self.started.isoformat(),
            "last_updated": self.last_updated.isoformat(),
        }


@dataclass(slots=True)
class WarningBoard:
    _active: dict[tuple[str, str], ActiveWarning] = field(default_factory=dict)

    def activate(self, warning: SchedulerWarning, when: datetime, subject: str = "") -> None:
        key = (warning.name, subject)
        found = self._active.get(key)
        if found is None:
            self._active[key] = ActiveWarning(warning, subject, when, when)
        else:
            found.warning = warning
            found.last_updated = when

    def deactivate(self, name: str, subject: str = "") -> None:
        self._active.pop((name, subject), None)

    def is_active(self, name: str, subject: str = "") -> bool:
        return (name, subject) in self._active

    def expire(self, when: datetime) -> None:
        for key in [k for k, w in self._active.items() if when - w.last_updated >= WARNING_EXPIRY]:
            del self._active[key]

    def active(self) -> list[ActiveWarning]:
        return list(self._active.values())
