"""A node's errors and warnings (spec §3.3 "Node errors" and "Node warnings").

Errors decide whether a node is DEGRADED and whether its cleanup and image pull may run;
warnings only inform. Both keep `started` and `last_updated` so operators see for how long.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

WARNING_EXPIRY = timedelta(hours=3)
SLOW_CLEANUP_THRESHOLD = 100


class NodeErrorName(StrEnum):
    BAD_DAEMON = "BAD_DAEMON"
    BAD_LOGSTASH = "BAD_LOGSTASH"
    CLEANUP = "CLEANUP"
    HEALTH_FAIL = "HEALTH_FAIL"
    HEALTH_TIMEOUT = "HEALTH_TIMEOUT"
    IMAGE_PULL = "IMAGE_PULL"
    LOW_DOCKER_SPACE = "LOW_DOCKER_SPACE"


@dataclass(slots=True, frozen=True)
class NodeErrorKind:
    name: NodeErrorName
    title: str
    description: str
    daemon_bad: bool = False
    pull_bad: bool = False


NODE_ERRORS: dict[NodeErrorName, NodeErrorKind] = {
    e.name: e
    for e in (
        NodeErrorKind(
            NodeErrorName.BAD_DAEMON,
            "Container Runtime Not Responding",
            "The node's container runtime is not responding.",
            True,
            True,
        ),
        NodeErrorKind(
            NodeErrorName.BAD_LOGSTASH,
            "Logging Unreachable",
            "The node cannot reach the logging endpoint.",
        ),
        NodeErrorKind(
            NodeErrorName.CLEANUP,
            "Cleanup Failure",
            "The node failed to clean up finished job executions.",
        ),
        NodeErrorKind(
            NodeErrorName.HEALTH_FAIL, "Health Check Failure", "The node failed its health check."
        ),
        NodeErrorKind(
            NodeErrorName.HEALTH_TIMEOUT,
            "Health Check Timeout",
            "The node's health check did not finish in time.",
        ),
        NodeErrorKind(
            NodeErrorName.IMAGE_PULL,
            "Image Pull Failure",
            "The node failed to pull the scheduler's image.",
        ),
        NodeErrorKind(
            NodeErrorName.LOW_DOCKER_SPACE,
            "Low Disk Space",
            "The node's free disk space is below the threshold.",
            False,
            True,
        ),
    )
}
HEALTH_ERRORS = frozenset(
    (
        NodeErrorName.BAD_DAEMON,
        NodeErrorName.BAD_LOGSTASH,
        NodeErrorName.HEALTH_FAIL,
        NodeErrorName.HEALTH_TIMEOUT,
        NodeErrorName.LOW_DOCKER_SPACE,
    )
)


@dataclass(slots=True)
class ActiveCondition:
    """An error or warning that is on, with when it started and when it was last seen."""

    name: str
    title: str
    description: str
    started: datetime
    last_updated: datetime

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "started": self.started.isoformat(),
            "last_updated": self.last_updated.isoformat(),
        }


@dataclass(slots=True)
class NodeConditions:
    errors: dict[NodeErrorName, ActiveCondition] = field(default_factory=dict)
    warnings: dict[str, ActiveCondition] = field(default_factory=dict)
    _warning_counter: int = 0

    def activate_error(self, name: NodeErrorName, when: datetime) -> None:
        found = self.errors.get(name)
        if found is not None:
            found.last_updated = when
            return
        kind = NODE_ERRORS[name]
        self.errors[name] = ActiveCondition(name, kind.title, kind.description, when, when)

    def clear_error(self, name: NodeErrorName) -> None:
        self.errors.pop(name, None)

    def clear_health_errors(self) -> None:
        for name in HEALTH_ERRORS:
            self.errors.pop(name, None)

    def has_errors(self) -> bool:
        return bool(self.errors)

    def is_daemon_bad(self) -> bool:
        return any(NODE_ERRORS[name].daemon_bad for name in self.errors)

    def is_pull_bad(self) -> bool:
        return any(NODE_ERRORS[name].pull_bad for name in self.errors)

    def error_updated(self, name: NodeErrorName) -> datetime | None:
        found = self.errors.get(name)
        return found.last_updated if found else None

    def add_numbered_warning(self, base: str, title: str, description: str, when: datetime) -> None:
        """CLEANUP_FAILURE n / CLEANUP_TIMEOUT n: accumulate until they expire."""
        self._warning_counter += 1
        name = f"{base} {self._warning_counter}"
        self.warnings[name] = ActiveCondition(name, title, description, when, when)

    def set_slow_cleanup(self, waiting: int, when: datetime) -> None:
        if waiting >= SLOW_CLEANUP_THRESHOLD:
            found = self.warnings.get("SLOW_CLEANUP")
            description = f"{waiting} job executions are waiting to be cleaned up."
            if found is None:
                self.warnings["SLOW_CLEANUP"] = ActiveCondition(
                    "SLOW_CLEANUP", "Slow Cleanup", description, when, when
                )
            else:
                found.description = description
                found.last_updated = when
        else:
            self.warnings.pop("SLOW_CLEANUP", None)

    def drop_old_warnings(self, when: datetime) -> None:
        for name in [n for n, w in self.warnings.items() if when - w.last_updated > WARNING_EXPIRY]:
            del self.warnings[name]
