"""`python -m benchmarks`: one scheduling cycle per engine on generated clusters.

Prints, per size, the cycle's CPU time (median and spread of the repetitions; the wall time
beside it, and the CPU time of the garbage collection owed after it), entries decided per
second (placed, reserved, canceled or given a reason), placements per second and peak memory,
for the reference and the fast engine in the same run, and their ratio; then the scaling
series (each dimension doubled on its own, fast engine). Progress goes to stderr.

Where the reference would take too long (nodes × queued above `--skip-reference-above`), it
is measured once on a prefix of the queue over the same cluster and its full cycle time is
extrapolated linearly in entries; the output marks such figures as estimated.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Sequence

from benchmarks.cycle_bench import Measurement, measure, parse, queue_prefix
from benchmarks.generator import Size, generate
from benchmarks.tables import text_table
from loadmaster.scheduling.fast_rows import compiled_rereads

SIZES: dict[str, Size] = {
    "small": Size("small", 100, 20, 500),
    "medium": Size("medium", 1_000, 50, 5_000),
    "large": Size("large", 10_000, 100, 100_000),
}
_BASE = SIZES["medium"]
SCALING: tuple[tuple[str, tuple[Size, ...]], ...] = (
    (
        "nodes",
        tuple(Size(f"n{k}", _BASE.nodes * k, _BASE.job_types, _BASE.queued) for k in (1, 2, 4, 8)),
    ),
    (
        "queue",
        tuple(Size(f"q{k}", _BASE.nodes, _BASE.job_types, _BASE.queued * k) for k in (1, 2, 4, 8)),
    ),
    (
        "job types",
        tuple(Size(f"t{k}", _BASE.nodes, _BASE.job_types * k, _BASE.queued) for k in (1, 2, 4)),
    ),
)


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def _rate(value: float) -> str:
    return f"{value:,.0f}/s"


def run_size(size: Size, args: argparse.Namespace) -> None:
    _progress(f"{size.name}: generating {size.label()}")
    raw = generate(size, args.seed)
    snapshot = parse(raw)
    fast = measure(snapshot, "fast", args.repeat, args.memory, _progress)
    work = size.nodes * size.queued
    sampled: Measurement | None = None
    estimated_seconds: float | None = None
    reference: Measurement | None = None
    if work <= args.skip_reference_above:
        reference = measure(snapshot, "reference", args.repeat, args.memory, _progress)
    else:
        prefix = min(args.reference_sample, size.queued)
        _progress(f"reference: sampling a prefix of {prefix:,} entries")
        sample = parse(queue_prefix(raw, prefix))
        sampled = measure(sample, "reference", 1, False, _progress)
        fast_sample = measure(sample, "fast", args.repeat, False, _progress)
        estimated_seconds = sampled.median * size.queued / prefix
    shapes = len({tuple(sorted(e["resources"].items())) for e in raw["queue"]})
    print(f"\n## {size.name}: {size.label()} ({shapes} distinct request shapes)")
    header = [
        "engine",
        "runs",
        "cycle cpu (median)",
        "wall",
        "spread",
        "gc after",
        "decided",
        "decided/s",
        "placed",
        "placed/s",
        "reserved",
        "peak mem",
    ]
    rows = [header, _row("fast", fast)]
    if reference is not None:
        rows.append(_row("reference", reference))
        ratio = reference.median / fast.median
        print(text_table(rows))
        print(f"fast vs reference: {ratio:,.1f}x the throughput (same cycle, same decisions)")
        return
    assert sampled is not None and estimated_seconds is not None
    rows.append(_row(f"fast, first {sampled.queue_entries:,} entries", fast_sample))
    rows.append(_row(f"reference, first {sampled.queue_entries:,} entries (1 run)", sampled))
    rows.append(
        [
            "reference, whole queue (ESTIMATED)",
            "-",
            "~" + _ms(estimated_seconds),
            "-",
            "-",
            "-",
            f"{fast.decided:,}",
            "~" + _rate(fast.decided / estimated_seconds),
            "-",
            "-",
            "-",
            "-",
        ]
    )
    print(text_table(rows))
    print(
        f"reference measured on the first {sampled.queue_entries:,} entries only; its whole-queue "
        f"time is extrapolated linearly in entries (an estimate). Ratios: "
        f"{sampled.median / fast_sample.median:,.1f}x on the measured prefix, "
        f"~{estimated_seconds / fast.median:,.0f}x on the whole queue (estimated)."
    )


def _row(label: str, m: Measurement) -> list[str]:
    return [
        label,
        str(len(m.times)),
        _ms(m.median),
        _ms(m.wall_median),
        _ms(m.spread),
        _ms(m.collect_median),
        f"{m.decided:,}",
        _rate(m.decided_per_second),
        f"{m.placed:,}",
        _rate(m.placed_per_second),
        f"{m.reserved:,}",
        "-" if m.peak_mib is None else f"{m.peak_mib:,.0f} MiB",
    ]


def run_scaling(args: argparse.Namespace) -> None:
    print("\n## scaling series (fast engine; each dimension doubled on its own)")
    for dimension, sizes in SCALING:
        rows = [["size", "cycle cpu (median)", "decided", "µs/entry", "vs previous"]]
        previous: float | None = None
        for size in sizes:
            _progress(f"scaling {dimension}: {size.label()}")
            m = measure(parse(generate(size, args.seed)), "fast", args.repeat, False, _progress)
            growth = "-" if previous is None else f"x{m.median / previous:.2f}"
            rows.append(
                [
                    size.label(),
                    _ms(m.median),
                    f"{m.decided:,}",
                    f"{m.median / m.decided * 1e6:,.1f}",
                    growth,
                ]
            )
            previous = m.median
        print(f"\n### doubling {dimension}")
        print(text_table(rows))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--sizes",
        default="small,medium,large,scaling",
        help="comma-separated: small, medium, large, scaling",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed cycles per engine and size")
    parser.add_argument(
        "--skip-reference-above",
        type=int,
        default=6_000_000,
        help="nodes × queued above which the reference runs once on a queue prefix (estimated)",
    )
    parser.add_argument(
        "--reference-sample",
        type=int,
        default=200,
        help="queue entries the reference runs on when it is sampled",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--no-memory", dest="memory", action="store_false", help="skip the tracemalloc run"
    )
    args = parser.parse_args(argv)
    wanted = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SIZES and s != "scaling"]
    if unknown:
        parser.error(f"unknown sizes: {', '.join(unknown)}")
    rereads = "compiled" if compiled_rereads() is not None else "Python (not built)"
    print(
        f"# loadmaster cycle benchmark (seed {args.seed}, {args.repeat} run(s) each, Python {platform.python_version()}, {platform.machine()}; fast engine key re-reads: {rereads})"
    )
    for name in wanted:
        if name == "scaling":
            run_scaling(args)
        else:
            run_size(SIZES[name], args)


if __name__ == "__main__":
    main()
