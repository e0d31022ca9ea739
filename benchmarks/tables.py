"""Plain-text tables for the benchmarks' output: the first column left-aligned, the others
right-aligned (they hold figures), a rule under the header row."""

from __future__ import annotations

from collections.abc import Sequence


def text_table(rows: Sequence[Sequence[str]]) -> str:
    """`rows[0]` is the header; every row has as many cells as it."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [_line(rows[0], widths), "  ".join("-" * w for w in widths)]
    lines += [_line(row, widths) for row in rows[1:]]
    return "\n".join(lines)


def _line(row: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(
        cell.ljust(w) if i == 0 else cell.rjust(w)
        for i, (cell, w) in enumerate(zip(row, widths, strict=True))
    )
