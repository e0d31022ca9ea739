"""Trace loaders: what they read, what they skip, and how they say what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadmaster.sim.loaders import (
    DEFAULT_PRIORITY,
    ClusterOptions,
    LoadOptions,
    PrioritySource,
    TraceError,
    TraceFormat,
    detect_format,
    find_alibaba_nodes,
    load_machines,
    load_trace,
)

from .support import ALIBABA_NODES, ALIBABA_PODS, HPC2N, SDSC, SHARED_TRACES

HEADER = "; MaxProcs: 16\n; UnixStartTime: 1000\n; Queue: 0 interactive\n; Queue: 3 normal\n"


def swf_line(*fields: object) -> str:
    """An 18-field SWF line; unspecified trailing fields are -1."""
    values = [str(f) for f in fields] + ["-1"] * (18 - len(fields))
    return " ".join(values) + "\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- SWF ----------------------------------------------------------------------------------------
def test_swf_fields_become_jobs(tmp_path: Path) -> None:
    # job, submit, wait, run, alloc, cpu, used mem, req procs, req time, req mem, status, ...
    text = HEADER + swf_line(7, 30, 5, 100, 4, -1, -1, 6, 200, -1, 1, 1, 1, 1, 3, 1)
    workload = load_trace(write(tmp_path, "t.swf", text))
    (job,) = workload.jobs
    assert (job.job_id, job.submit_seconds, job.run_seconds) == (7, 30, 100)
    assert job.resources.cpus == 6  # requested processors win over allocated ones
    assert job.requested_seconds == 200
    assert job.priority == 3 and job.job_type == "queue-3-normal"
    assert workload.start_time.timestamp() == 1000
    assert [n.resources.cpus for n in workload.nodes] == [16]  # pooled: MaxProcs
    assert workload.header[0] == "; MaxProcs: 16"


def test_swf_falls_back_to_allocated_processors_and_unknown_queue(tmp_path: Path) -> None:
    text = HEADER + swf_line(1, 0, 0, 10, 5, -1, -1, -1, -1, -1, 1, 1, 1, 1, -1, 2)
    (job,) = load_trace(write(tmp_path, "t.swf", text)).jobs
    assert job.resources.cpus == 5
    assert job.requested_seconds is None
    assert job.priority == DEFAULT_PRIORITY and job.job_type == "partition-2"


def test_swf_skips_and_counts_jobs_that_never_ran(tmp_path: Path) -> None:
    text = HEADER + "".join(
        (
            swf_line(1, 0, 5, -1, 4, -1, -1, 4, 100, -1, 5),  # cancelled before start
            swf_line(2, 0, 5, 0, 4, -1, -1, 4, 100, -1, 5),  # cancelled, run time 0
            swf_line(3, 0, 5, -1, 4, -1, -1, 4, 100, -1, -1),  # no run time
            swf_line(4, 0, 5, 10, -1, -1, -1, -1, 100, -1, 1),  # no processor count
            swf_line(5, 0, 5, 0, 4, -1, -1, 4, 100, -1, 0),  # failed at once: replayed
        )
    )
    workload = load_trace(write(tmp_path, "t.swf", text))
    assert [j.job_id for j in workload.jobs] == [5]
    assert workload.skipped == {
        "cancelled before start": 2,
        "no run time": 1,
        "no processor count": 1,
    }


def test_swf_memory_in_kb_per_processor_counts_only_with_known_cluster_memory(
    tmp_path: Path,
) -> None:
    # 4 processors × 2048 KB requested each = 8 MiB; job 2 only says what it used: 1024 KB.
    text = HEADER + swf_line(1, 0, 0, 10, 4, -1, -1, 4, 100, 2048, 1)
    text += swf_line(2, 0, 0, 10, 2, -1, 1024, 2, 100, -1, 1)
    path = write(tmp_path, "t.swf", text)
    ignored = load_trace(path)
    assert [j.resources.mem for j in ignored.jobs] == [0, 0]
    assert any("memory" in note for note in ignored.notes)
    counted = load_trace(path, cluster=ClusterOptions(mem_per_node_mib=4096))
    assert [j.resources.mem for j in counted.jobs] == [8.0, 2.0]
    assert counted.nodes[0].resources.mem == 4096


def test_swf_flat_priorities_make_every_job_equal(tmp_path: Path) -> None:
    text = HEADER + swf_line(1, 0, 0, 10, 1, -1, -1, 1, 10, -1, 1, 1, 1, 1, 0)
    text += swf_line(2, 1, 0, 10, 1, -1, -1, 1, 10, -1, 1, 1, 1, 1, 3)
    options = LoadOptions(priorities=PrioritySource.FLAT)
    workload = load_trace(write(tmp_path, "t.swf", text), options=options)
    assert {j.priority for j in workload.jobs} == {DEFAULT_PRIORITY}
    assert [t.name for t in workload.job_types] == ["queue-0-interactive", "queue-3-normal"]


def test_swf_limit_counts_replayable_jobs(tmp_path: Path) -> None:
    text = HEADER + swf_line(1, 0, 5, -1, 4, -1, -1, 4, 100, -1, 5)
    text += "".join(swf_line(n, n, 0, 10, 1, -1, -1, 1, 10, -1, 1) for n in range(2, 9))
    workload = load_trace(write(tmp_path, "t.swf", text), options=LoadOptions(limit=3))
    assert [j.job_id for j in workload.jobs] == [2, 3, 4]


def test_swf_nodes_option_splits_the_machine(tmp_path: Path) -> None:
    path = write(tmp_path, "t.swf", HEADER + swf_line(1, 0, 0, 10, 1, -1, -1, 1, 10, -1, 1))
    workload = load_trace(path, cluster=ClusterOptions(nodes=4))
    assert [n.resources.cpus for n in workload.nodes] == [4, 4, 4, 4]
    workload = load_trace(path, cluster=ClusterOptions(cpus_per_node=8))
    assert len(workload.nodes) == 2 and workload.cluster_kind == "nodes"


def test_job_type_resources_are_the_median_request(tmp_path: Path) -> None:
    text = HEADER + "".join(
        swf_line(n, n, 0, 10, cpus, -1, -1, cpus, 10, -1, 1, 1, 1, 1, 3)
        for n, cpus in enumerate((1, 2, 16), start=1)
    )
    (job_type,) = load_trace(write(tmp_path, "t.swf", text)).job_types
    assert job_type.resources.cpus == 2 and job_type.jobs == 3


SWF_ERRORS = {
    "too few fields": ("1 0 0 10\n", 2, None, "expected 18 fields, found 4"),
    "not a number": (swf_line(1, "soon", 0, 10), 2, "field 2 (submit time)", "'soon'"),
    "nan": (swf_line(1, 0, 0, "nan"), 2, "field 4 (run time)", "not a number"),
}


@pytest.mark.parametrize("case", SWF_ERRORS.values(), ids=SWF_ERRORS.keys())
def test_swf_errors_name_file_line_and_field(
    tmp_path: Path, case: tuple[str, int, str | None, str]
) -> None:
    body, line, field, problem = case
    path = write(tmp_path, "bad.swf", "; MaxProcs: 4\n" + body)
    with pytest.raises(TraceError) as caught:
        load_trace(path)
    error = caught.value
    assert (error.line, error.field) == (line, field)
    assert problem in str(error)
    assert str(error).startswith(f"{path}:{line}: ")


def test_swf_without_max_procs_needs_a_cluster(tmp_path: Path) -> None:
    path = write(tmp_path, "t.swf", swf_line(1, 0, 0, 10, 1, -1, -1, 1, 10, -1, 1))
    with pytest.raises(TraceError, match="MaxProcs"):
        load_trace(path)
    workload = load_trace(path, cluster=ClusterOptions(nodes=2, cpus_per_node=3))
    assert [n.resources.cpus for n in workload.nodes] == [3, 3]


def test_swf_header_number_must_be_a_number(tmp_path: Path) -> None:
    path = write(tmp_path, "t.swf", "; MaxProcs: many\n" + swf_line(1, 0, 0, 10, 1))
    with pytest.raises(TraceError, match="header MaxProcs: 'many' is not a number"):
        load_trace(path)


def test_machines_file(tmp_path: Path) -> None:
    path = write(tmp_path, "c.machines", "0 seth 3 2 1 1048576\n")
    nodes = load_machines(path)
    assert [n.hostname for n in nodes] == ["seth-0001", "seth-0002", "seth-0003"]
    assert nodes[0].resources.cpus == 2 and nodes[0].resources.mem == 1024
    bad = write(tmp_path, "bad.machines", "0 seth three 2 1 1048576\n")
    with pytest.raises(TraceError, match=r"bad.machines:1: nodes: 'three' is not a number"):
        load_machines(bad)


# -- Alibaba ------------------------------------------------------------------------------------
PODS_HEADER = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
    "creation_time,deletion_time,scheduled_time\n"
)
NODES = "sn,cpu_milli,memory_mib,gpu,model\nn1,32000,262144,8,V100\nn2,16000,65536,0,\n"


def alibaba(tmp_path: Path, rows: str, nodes: str = NODES) -> tuple[Path, Path]:
    return (
        write(tmp_path, "x_pod_list_t.csv", PODS_HEADER + rows),
        write(tmp_path, "x_node_list_t.csv", nodes),
    )


def test_alibaba_pods_and_nodes(tmp_path: Path) -> None:
    pods, nodes = alibaba(
        tmp_path,
        "p0,12000,16384,1,460,,LS,Running,100,1100,160\n"
        "p1,4002,2048,2,1000,,BE,Succeeded,200,500,250\n"
        "p2,1000,1024,0,0,,BE,Pending,300,900,\n",
    )
    assert find_alibaba_nodes(pods) == nodes
    workload = load_trace(pods)
    first, second = workload.jobs
    assert (first.submit_seconds, first.run_seconds) == (100, 940)  # deletion − scheduled
    assert first.resources.as_dict() == {"cpus": 12.0, "mem": 16384.0, "disk": 0.0, "gpus": 0.46}
    assert first.priority == 1 and first.job_type == "LS/gpu-share"
    assert second.resources.gpus == 2 and second.job_type == "BE/gpu-multi"
    assert second.resources.cpus == 4.01  # rounded up to the core's 0.01 precision
    assert workload.skipped == {"never scheduled": 1}
    assert [(n.hostname, n.resources.gpus, n.model) for n in workload.nodes] == [
        ("n1", 8.0, "V100"),
        ("n2", 0.0, ""),
    ]


ALIBABA_ERRORS = {
    "missing column": ("name,cpu_milli\np0,1\n", 1, "header", "missing column(s)"),
    "not a number": (
        PODS_HEADER + "p0,lots,16,0,0,,LS,Running,0,10,0\n",
        2,
        "cpu_milli",
        "'lots' is not a number",
    ),
    "negative": (
        PODS_HEADER + "p0,1000,-16,0,0,,LS,Running,0,10,0\n",
        2,
        "memory_mib",
        "must be a number >= 0",
    ),
    "deleted before scheduled": (
        PODS_HEADER + "p0,1000,16,0,0,,LS,Running,0,10,20\n",
        2,
        "deletion_time",
        "before scheduled_time",
    ),
}


@pytest.mark.parametrize("case", ALIBABA_ERRORS.values(), ids=ALIBABA_ERRORS.keys())
def test_alibaba_errors_name_file_line_and_column(
    tmp_path: Path, case: tuple[str, int, str, str]
) -> None:
    text, line, field, problem = case
    pods = write(tmp_path, "x_pod_list_t.csv", text)
    write(tmp_path, "x_node_list_t.csv", NODES)
    with pytest.raises(TraceError) as caught:
        load_trace(pods)
    assert (caught.value.line, caught.value.field) == (line, field)
    assert problem in str(caught.value) and str(pods) in str(caught.value)


def test_alibaba_needs_a_node_list(tmp_path: Path) -> None:
    pods = write(tmp_path, "lonely.csv", PODS_HEADER)
    with pytest.raises(TraceError, match="--nodes-file"):
        load_trace(pods)


def test_format_detection() -> None:
    assert detect_format(Path("a.swf")) is TraceFormat.SWF
    assert detect_format(Path("a.csv")) is TraceFormat.ALIBABA
    assert detect_format(Path("a.log"), "SWF") is TraceFormat.SWF
    with pytest.raises(TraceError, match="use --format"):
        detect_format(Path("a.log"))
    with pytest.raises(TraceError, match="unknown format 'gwf'"):
        detect_format(Path("a.log"), "gwf")


def test_missing_file_is_a_trace_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="no such file"):
        load_trace(tmp_path / "absent.swf")


# -- the shipped excerpts -------------------------------------------------------------------------
def test_excerpts_keep_their_attribution_headers() -> None:
    sdsc = SDSC.read_text(encoding="utf-8")
    assert "The JOBLOG data is Copyright 2000 The Regents of the University of" in sdsc
    assert "provided that this copyright notice is preserved in all copies" in sdsc
    hpc2n = HPC2N.read_text(encoding="utf-8")
    assert "; Installation: HPC2N - High Performance Computing Center North, Sweden" in hpc2n
    assert "; Acknowledge: Ake Sandgren" in hpc2n
    assert (SDSC.parent / "README.md").is_file()


def test_excerpts_load() -> None:
    sdsc = load_trace(SDSC)
    assert len(sdsc.jobs) + sum(sdsc.skipped.values()) == 400
    hpc2n = load_trace(HPC2N, cluster=ClusterOptions(machines=Path(f"{HPC2N}.machines")))
    assert len(hpc2n.nodes) == 120 and hpc2n.nodes[0].resources.mem == 1024
    assert find_alibaba_nodes(ALIBABA_PODS) == ALIBABA_NODES
    assert len(load_trace(ALIBABA_PODS).jobs) > 200


@pytest.mark.skipif(not SHARED_TRACES.is_dir(), reason="full traces not available")
def test_full_traces_load_when_present() -> None:
    sdsc = load_trace(SHARED_TRACES / "SDSC-SP2-1998-first4961jobs.swf")
    assert len(sdsc.jobs) == 4961 - 355  # the README's count of jobs that never ran
    alibaba = load_trace(SHARED_TRACES / "alibaba-gpu-v2023-openb_pod_list_default.csv")
    assert len(alibaba.nodes) == 1523 and alibaba.skipped == {"never scheduled": 897}
