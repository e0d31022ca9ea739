"""Input checks at the store's edge: every failure is a ValueError that names the field.

The API layer turns these into 4xx answers as they are, so the message says which field and
what is wrong with it, in the form `field.path: problem`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from loadmaster.model.job_types import StepSpec
from loadmaster.resources import Resources

STEP_ORDER: tuple[str, ...] = ("pull", "pre", "main", "post")
NAME_MAX = 255
VERSION_MAX = 64
KEY_MAX = 255


def check_resources(resources: Resources, path: str = "resources") -> None:
    for name, value in resources.items():
        if not name:
            raise ValueError(f"{path}: resource names must not be empty")
        if not math.isfinite(value):
            raise ValueError(f"{path}.{name}: must be a finite number, not {value!r}")
        if value < 0:
            raise ValueError(f"{path}.{name}: must be zero or more, not {value:g}")


def check_text(value: object, path: str, max_length: int) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{path}: must be a non-empty string")
    if len(value) > max_length:
        raise ValueError(f"{path}: at most {max_length} characters, not {len(value)}")


def check_int(value: object, path: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{path}: must be an integer, not {value!r}")
    if value < minimum:
        raise ValueError(f"{path}: must be at least {minimum}, not {value}")


def check_steps(steps: tuple[str, ...]) -> None:
    """Steps run in the fixed order pull → pre → main → post; only `main` is required."""
    unknown = [kind for kind in steps if kind not in STEP_ORDER]
    if unknown:
        raise ValueError(f"steps: unknown step kinds {unknown}; choose from {list(STEP_ORDER)}")
    if len(set(steps)) != len(steps):
        raise ValueError(f"steps: each kind at most once, not {list(steps)}")
    if "main" not in steps:
        raise ValueError("steps: a `main` step is required")
    if list(steps) != sorted(steps, key=STEP_ORDER.index):
        raise ValueError(f"steps: must be in the order {list(STEP_ORDER)}, not {list(steps)}")


def check_commands(commands: Mapping[str, StepSpec], steps: tuple[str, ...]) -> None:
    for kind, spec in commands.items():
        path = f"commands.{kind}"
        if kind not in steps:
            raise ValueError(f"{path}: {kind!r} is not one of the steps {list(steps)}")
        if not isinstance(spec, StepSpec):
            raise ValueError(f"{path}: must be a StepSpec")
        if not spec.command:
            raise ValueError(f"{path}.command: must not be empty")
        if not all(isinstance(arg, str) for arg in spec.command):
            raise ValueError(f"{path}.command: every argument must be a string")
        if spec.shell and len(spec.command) != 1:
            raise ValueError(f"{path}.command: a shell step takes exactly one command line")


def check_environment(environment: Mapping[str, str], secret_keys: frozenset[str]) -> None:
    for key, value in environment.items():
        if not isinstance(key, str) or not key or "=" in key:
            raise ValueError(f"environment: invalid variable name {key!r}")
        if not isinstance(value, str):
            raise ValueError(f"environment.{key}: must be a string")
    missing = sorted(secret_keys - environment.keys())
    if missing:
        raise ValueError(f"secret_keys: {missing} are not in the environment")


def check_job_type_spec(
    *,
    name: str,
    version: str,
    resources: Resources,
    max_scheduled: int | None,
    max_tries: int,
    timeout_seconds: float | None,
    steps: tuple[str, ...],
    commands: Mapping[str, StepSpec],
    environment: Mapping[str, str],
    secret_keys: frozenset[str],
) -> None:
    check_text(name, "name", NAME_MAX)
    check_text(version, "version", VERSION_MAX)
    if not isinstance(resources, Resources):
        raise ValueError("resources: must be a Resources value")
    check_resources(resources)
    if max_scheduled is not None:
        check_int(max_scheduled, "max_scheduled", 0)
    check_int(max_tries, "max_tries", 1)
    if timeout_seconds is not None and not (
        isinstance(timeout_seconds, int | float)
        and math.isfinite(timeout_seconds)
        and timeout_seconds > 0
    ):
        raise ValueError(f"timeout_seconds: must be a positive number, not {timeout_seconds!r}")
    check_steps(tuple(steps))
    check_commands(commands, tuple(steps))
    check_environment(environment, frozenset(secret_keys))


def check_submission(
    *,
    environment: Mapping[str, str],
    priority: int,
    idempotency_key: str | None,
    input_workspaces: tuple[str, ...],
    output_workspaces: tuple[str, ...],
    input_file_size_mib: float,
) -> None:
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ValueError(f"priority: must be an integer, not {priority!r}")
    check_environment(environment, frozenset())
    if idempotency_key is not None:
        check_text(idempotency_key, "idempotency_key", KEY_MAX)
    for path, names in (
        ("input_workspaces", input_workspaces),
        ("output_workspaces", output_workspaces),
    ):
        for name in names:
            check_text(name, path, NAME_MAX)
    if not (
        isinstance(input_file_size_mib, int | float)
        and math.isfinite(input_file_size_mib)
        and input_file_size_mib >= 0
    ):
        raise ValueError(f"input_file_size_mib: must be zero or more, not {input_file_size_mib!r}")
