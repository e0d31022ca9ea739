"""`loadmaster run`: the README's first command, end to end with real processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadmaster", "run", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def test_quickstart_runs_every_job_and_prints_the_summary(tmp_path: Path) -> None:
    db = tmp_path / "quickstart.db"
    result = run(str(REPO / "examples" / "quickstart.toml"), "--db", f"sqlite:///{db}", "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("primes:1.0", "wordcount:1.0", "matrix:1.0", "checksum:1.0"):
        assert name in result.stdout
    assert "24 jobs in" in result.stdout and "0 failed or canceled, 0 unfinished" in result.stdout


def test_a_failing_job_makes_run_exit_1(tmp_path: Path) -> None:
    workload = tmp_path / "w.toml"
    workload.write_text("""
[[job_types]]
name = "ok"
steps.main = ["{python}", "-c", "pass"]
[[job_types]]
name = "bad"
steps.main = ["{python}", "-c", "import sys; sys.exit(4)"]
[[jobs]]
job_type = "ok"
count = 2
[[jobs]]
job_type = "bad"
""")
    result = run(str(workload), "--quiet")
    assert result.returncode == 1
    assert "3 jobs in" in result.stdout and "1 failed or canceled" in result.stdout


def test_an_invalid_workload_exits_2_and_runs_nothing(tmp_path: Path) -> None:
    workload = tmp_path / "w.toml"
    workload.write_text('[[jobs]]\njob_type = "nope"\n')
    result = run(str(workload))
    assert result.returncode == 2
    assert "jobs[0].job_type: unknown job type 'nope'" in result.stderr
    assert "Summary" not in result.stdout
