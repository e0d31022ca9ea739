"""Errors in what people hand us (snapshots, configuration, workloads): one line per problem,
each naming the field's path, e.g. `queue[0].resources: cpus: must not be negative`."""

from __future__ import annotations

from pydantic import ValidationError


class InputError(ValueError):
    """Bad input; `problems` holds one "path: problem" line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def field_path(loc: tuple[int | str, ...]) -> str:
    """`("queue", 0, "resources")` → `queue[0].resources`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_problems(exc: ValidationError, source: str | None = None) -> list[str]:
    prefix = f"{source}: " if source else ""
    return [
        f"{prefix}{field_path(tuple(e['loc'])) or '(top level)'}: "
        f"{str(e['msg']).removeprefix('Value error, ')}"
        for e in exc.errors(include_url=False)
    ]
