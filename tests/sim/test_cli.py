"""`loadmaster simulate` as a user runs it: outputs, files, and exit code 2 for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from loadmaster.sim.cli import simulate_command

from .support import ALIBABA_PODS, HPC2N, SDSC

RUNNER = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    app = typer.Typer()
    app.command()(simulate_command)
    result = RUNNER.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_table_output() -> None:
    code, out, _ = run(str(SDSC), "--limit", "60", "--quiet")
    assert code == 0
    assert "Replay of SDSC-SP2-1998-first400jobs.swf" in out
    assert "bounded slowdown" in out and "By job type" in out


def test_json_output_is_the_metrics() -> None:
    code, out, _ = run(str(SDSC), "--limit", "60", "--output", "json", "--policy", "backfill")
    assert code == 0
    metrics = json.loads(out)
    assert metrics["policy"] == "backfill"
    assert metrics["outcomes"]["completed"] == 60
    assert metrics["bounded_slowdown"]["tau_seconds"] == 10


def test_compare_writes_metrics_and_charts(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, _ = run(
        str(SDSC), "--limit", "80", "--compare", "reference,backfill", "--out", str(out)
    )
    assert code == 0
    assert "Policies compared" in stdout
    for name in ("comparison.json", "comparison.png", "utilization.png", "wait_cdf.png"):
        assert (out / name).stat().st_size > 0
    for policy in ("reference", "backfill"):
        for name in ("metrics.json", "utilization.png", "queue_length.png", "wait_cdf.png"):
            assert (out / policy / name).stat().st_size > 0
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cluster_options() -> None:
    code, out, _ = run(str(HPC2N), "--limit", "50", "--nodes", "10", "--output", "json")
    assert code == 0
    metrics = json.loads(out)
    cluster = metrics["trace"]["cluster"]
    assert (cluster["kind"], cluster["nodes"], cluster["capacity"]) == ("nodes", 10, {"cpus": 240})
    assert cluster["shapes"] == "10 × [24 cpus]"
    code, out, _ = run(
        str(HPC2N), "--limit", "50", "--machines", f"{HPC2N}.machines", "--output", "json"
    )
    assert code == 0 and json.loads(out)["outcomes"]["infeasible"] > 0


def test_alibaba_finds_its_node_list() -> None:
    code, out, _ = run(str(ALIBABA_PODS), "--limit", "40", "--output", "json")
    assert code == 0
    assert json.loads(out)["trace"]["cluster"]["nodes"] == 153


BAD_INPUT = {
    "missing trace": (["absent.swf"], "no such file"),
    "unknown policy": ([str(SDSC), "--policy", "sjf"], "--policy: unknown policy 'sjf'"),
    "unknown compared policy": ([str(SDSC), "--compare", "reference,x"], "--compare"),
    "unknown format": ([str(SDSC), "--format", "gwf"], "unknown format 'gwf'"),
    "nodes file for swf": ([str(SDSC), "--nodes-file", str(SDSC)], "--nodes-file"),
    "nodes for alibaba": ([str(ALIBABA_PODS), "--nodes", "3"], "brings its own node list"),
    "bad limit": ([str(SDSC), "--limit", "0"], "--limit: must be at least 1"),
    "bad cycle": ([str(SDSC), "--cycle-seconds", "0"], "--cycle-seconds: must be positive"),
    "bad output": ([str(SDSC), "--output", "yaml"], "--output: must be one of table, json"),
    "bad engine": ([str(SDSC), "--engine", "quantum", "--limit", "5"], "--engine"),
}


@pytest.mark.parametrize("case", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_exits_2_naming_the_problem(case: tuple[list[str], str]) -> None:
    args, message = case
    code, _, err = run(*args)
    assert code == 2
    assert message in " ".join(err.split())


def test_malformed_trace_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.swf"
    bad.write_text("; MaxProcs: 4\n1 0 0 ten 1 -1 -1 1 10 -1 1 1 1 1 1 1 -1 -1\n")
    code, _, err = run(str(bad))
    assert code == 2
    assert f"{bad}:2: field 4 (run time): 'ten' is not a number" in " ".join(err.split())
