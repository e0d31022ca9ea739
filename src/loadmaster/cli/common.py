"""What every command shares: output formats and the exit-2 error path."""

from __future__ import annotations

from enum import StrEnum

import typer
from rich.console import Console


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


def fail(message: str) -> typer.Exit:
    """Bad usage or input: the message on stderr, exit status 2."""
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(2)
