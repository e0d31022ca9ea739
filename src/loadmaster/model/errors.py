"""The error catalogue of job executions and which errors are retried (spec §6.4).

A retried error re-queues the job while it has tries left; a job's own failure (a non-zero
exit of `main`) is not retried unless its job type says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorCategory(StrEnum):
    SYSTEM = "SYSTEM"
    ALGORITHM = "ALGORITHM"
    DATA = "DATA"


@dataclass(slots=True, frozen=True)
class ExecutionError:
    name: str
    title: str
    category: ErrorCategory
    should_be_retried: bool


def _e(name: str, title: str, category: ErrorCategory, retried: bool) -> ExecutionError:
    return ExecutionError(name, title, category, retried)


S, A = ErrorCategory.SYSTEM, ErrorCategory.ALGORITHM
BUILTIN_ERRORS: dict[str, ExecutionError] = {
    e.name: e
    for e in (
        _e("task-launch", "Task Launch Failure", S, True),
        _e("docker-task-launch", "Container Launch Failure", S, True),
        _e("docker-terminated", "Container Terminated", S, True),
        _e("node-lost", "Node Lost", S, True),
        _e("resource-starvation", "Resource Starvation", S, True),
        _e("launch-timeout", "Launch Timeout", S, True),
        _e("pull-timeout", "Pull Timeout", S, True),
        _e("pre-timeout", "Pre-task Timeout", S, True),
        _e("post-timeout", "Post-task Timeout", S, True),
        _e("system-timeout", "System Job Timeout", S, True),
        _e("pull", "Pull Failure", S, True),
        _e("pre", "Pre-task Failure", S, True),
        _e("post", "Post-task Failure", S, True),
        _e("scheduler-lost", "Scheduler Lost", S, True),
        _e("timeout", "Job Timeout", A, False),
        _e("algorithm-unknown", "Algorithm Error", A, False),
        _e("unknown", "Unknown Error", S, False),
        _e("canceled", "Canceled", S, False),
    )
}
TIMEOUT_ERRORS = {"pull": "pull-timeout", "pre": "pre-timeout", "post": "post-timeout"}


def error(name: str) -> ExecutionError:
    return BUILTIN_ERRORS.get(name, BUILTIN_ERRORS["unknown"])
