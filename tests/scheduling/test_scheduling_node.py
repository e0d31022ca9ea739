"""SchedulingNode rules (spec §8.2, §8.7, §8.10): accepts, scores and the offer fallback."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loadmaster.model.executions import ExecutionSpec, RunningJobExecution
from loadmaster.model.gpus import GpuTable
from loadmaster.model.node_conditions import NodeErrorName
from loadmaster.model.nodes import Node
from loadmaster.model.offers import ResourceOffer, ResourceSet
from loadmaster.model.queue import QueueEntry
from loadmaster.model.tasks import Task
from loadmaster.resources import Resources
from loadmaster.scheduling.queued import QueuedJobExecution
from loadmaster.scheduling.scheduling_node import SchedulingNode

WHEN = datetime(2026, 1, 1, tzinfo=UTC)
R = Resources.of


def ready_node(**flags: bool) -> Node:
    values = {"is_initial_cleanup_completed": True, "is_image_pulled": True, **flags}
    return Node(1, "host_1", "agent_1", last_health_task=WHEN, **values)


def sched_node(
    offered: Resources,
    watermark: Resources | None = None,
    tasks: list[Task] | None = None,
    exes: list[RunningJobExecution] | None = None,
    node: Node | None = None,
    gpus: GpuTable | None = None,
) -> SchedulingNode:
    task_res = Resources()
    for t in tasks or []:
        task_res = task_res.add(t.resources)
    rs = ResourceSet(offered, task_res, watermark or offered.add(task_res))
    return SchedulingNode(
        node or ready_node(), "agent_1", rs, tasks or [], exes or [], gpus or GpuTable()
    )


def queued(i: int, priority: int = 100, **res: float) -> QueuedJobExecution:
    return QueuedJobExecution(QueueEntry(i, 100 + i, 1, priority, WHEN, R(**res)))


def running(
    i: int, priority: int, current: str | None, remaining: tuple[str, ...], **res: float
) -> RunningJobExecution:
    steps = ((current,) if current else ()) + remaining
    exe = RunningJobExecution.create(
        ExecutionSpec(
            id=i,
            job_id=i,
            job_type_id=1,
            node_id=1,
            agent_id="agent_1",
            priority=priority,
            resources=R(**res),
            queued=WHEN,
            started=WHEN,
            cluster_id=f"c{i}",
            steps=steps,
        )
    )
    if current:
        task = exe.start_next_task()
        assert task is not None
        task.launch(WHEN)
    return exe


JTR = [R(cpus=1, mem=512), R(cpus=4, mem=4096), R(cpus=8, mem=1024)]


@pytest.mark.parametrize(
    ("offered", "wanted", "expected"),
    [
        (R(cpus=4, mem=4096), R(cpus=5, mem=128), None),
        (R(cpus=4, mem=4096), R(cpus=4, mem=4096), 0),
        (R(cpus=4, mem=4096), R(cpus=3, mem=3585), 0),
        (R(cpus=4, mem=4096), R(cpus=2, mem=1024), 1),
        (R(cpus=16, mem=8192), R(cpus=1, mem=512), 3),
        (R(cpus=4, mem=4096, gpus=1), R(cpus=1, mem=128, gpus=2), None),
    ],
    ids=[
        "no-fit-is-none",
        "exact-fit-counts-zero",
        "leaves-too-little-memory",
        "leaves-room-for-one",
        "leaves-room-for-all",
        "gpus-do-not-fit",
    ],
)
def test_scheduling_score_counts_job_types_that_still_fit(
    offered: Resources, wanted: Resources, expected: int | None
) -> None:
    node = sched_node(offered)
    entry = QueuedJobExecution(QueueEntry(1, 1, 1, 1, WHEN, wanted))
    assert node.score_job_exe_for_scheduling(entry, JTR) == expected


def test_scheduling_score_uses_watermark_minus_tasks_and_allocations() -> None:
    node = sched_node(R(cpus=4, mem=4096), watermark=R(cpus=16, mem=16384))
    # watermark 16 - tasks 0 - allocated 0 - request 1 = 15 cpus: every job type fits
    assert node.score_job_exe_for_scheduling(queued(1, cpus=1, mem=512), JTR) == 3
    assert node.accept_new_job_exe(queued(2, cpus=3, mem=512))
    # now 16 - 3 - 1 = 12 cpus, 16384 - 512 - 512 memory
    assert node.score_job_exe_for_scheduling(queued(3, cpus=1, mem=512), JTR) == 3
    # remaining is offered minus allocated (4096 - 512 = 3584 MiB), whatever the watermark says
    assert node.score_job_exe_for_scheduling(queued(4, cpus=1, mem=3584), JTR) == 3
    assert node.score_job_exe_for_scheduling(queued(5, cpus=1, mem=3585), JTR) is None


def test_reservation_score_subtracts_only_more_important_work_and_non_job_tasks() -> None:
    health = Task("h", "health", R(cpus=1, mem=100), agent_id="agent_1")
    other_job_task = Task("t", "main", R(cpus=6, mem=100), agent_id="agent_1")
    important = running(1, 10, "main", (), cpus=4, mem=1000)
    unimportant = running(2, 90, None, ("main",), cpus=4, mem=1000)
    node = sched_node(
        R(cpus=1, mem=1000),
        watermark=R(cpus=16, mem=16000),
        tasks=[health, other_job_task],
        exes=[important, unimportant],
    )
    entry = queued(9, priority=50, cpus=8, mem=1000)
    # 16 - health 1 - important 4 = 11 cpus available; 11 - 8 = 3 cpus -> only the 1-cpu type fits
    assert node.reservation_available(50).cpus == 11
    assert node.score_job_exe_for_reservation(entry, JTR) == 1
    assert node.score_job_exe_for_reservation(queued(8, priority=50, cpus=12, mem=1), JTR) is None
    # at priority 95 the unimportant execution counts too: 11 - 4 = 7 < 8
    assert node.score_job_exe_for_reservation(queued(7, priority=95, cpus=8, mem=1000), JTR) is None


def test_reservation_counts_entries_allocated_this_cycle_with_priority_at_most_its_own() -> None:
    node = sched_node(R(cpus=8, mem=8000), watermark=R(cpus=8, mem=8000))
    assert node.accept_new_job_exe(queued(1, priority=50, cpus=6, mem=1000))
    assert (
        node.score_job_exe_for_reservation(queued(2, priority=40, cpus=4, mem=100), JTR) is not None
    )
    assert node.score_job_exe_for_reservation(queued(3, priority=50, cpus=4, mem=100), JTR) is None


@pytest.mark.parametrize(
    ("node_flags", "expected"),
    [
        ({}, True),
        ({"is_paused": True}, False),
        ({"is_online": False}, False),
        ({"is_image_pulled": False}, False),
    ],
    ids=["ready-accepts", "paused-refuses", "offline-refuses", "image-pull-refuses"],
)
def test_new_job_needs_a_ready_node(node_flags: dict[str, bool], expected: bool) -> None:
    node = sched_node(R(cpus=4, mem=4096), node=ready_node(**node_flags))
    entry = queued(1, cpus=1, mem=512)
    assert node.accept_new_job_exe(entry) is expected
    assert (entry.scheduled_node_id == 1) is expected
    assert node.remaining_resources.cpus == (3 if expected else 4)


def test_new_job_needs_room_and_the_fitting_form_keeps_the_other_checks() -> None:
    """`accept_fitting_job_exe` skips only the room test (its caller made it): readiness and
    the GPU reservation still decide."""
    node = sched_node(R(cpus=2, mem=1024, gpus=1))
    too_big = queued(1, cpus=4, mem=512)
    assert not node.accept_new_job_exe(too_big)
    assert too_big.scheduled_node_id is None and node.remaining_resources.cpus == 2
    paused = sched_node(R(cpus=2, mem=1024), node=ready_node(is_paused=True))
    assert not paused.accept_fitting_job_exe(queued(2, cpus=1, mem=512))
    assert node.accept_fitting_job_exe(queued(3, cpus=1, mem=512, gpus=1))
    assert not node.accept_fitting_job_exe(queued(4, cpus=1, mem=512, gpus=1))  # GPU taken
    assert node.remaining_resources.cpus == 1 and len(node.allocated_queued_job_exes) == 1


def test_new_job_with_gpus_needs_a_gpu_reservation() -> None:
    gpus = GpuTable()
    node = sched_node(R(cpus=4, mem=4096, gpus=1), gpus=gpus)
    assert gpus.total(1) == 1  # defined from the node's GPUs
    assert gpus.reserve(1, 77, 1)
    assert not node.accept_new_job_exe(queued(1, cpus=1, mem=512, gpus=1))
    gpus.release_reservation(1, 77)
    assert node.accept_new_job_exe(queued(2, cpus=1, mem=512, gpus=1))
    node.reset_new_job_exes()
    assert gpus.available(1) == 1 and node.remaining_resources.gpus == 1


@pytest.mark.parametrize(
    ("node_flags", "fits", "expected"),
    [({}, True, True), ({"is_paused": True}, True, False), ({}, False, False)],
    ids=["ready-and-fits", "not-ready", "does-not-fit"],
)
def test_system_task_needs_ready_and_room(
    node_flags: dict[str, bool], fits: bool, expected: bool
) -> None:
    node = sched_node(R(cpus=1, mem=1024 if fits else 100), node=ready_node(**node_flags))
    task = Task("svc", "message-handler", R(cpus=0.5, mem=512))
    assert node.accept_system_task(task) is expected
    assert (task.agent_id == "agent_1") is expected


def test_next_task_waits_when_it_does_not_fit_and_is_refused_on_a_node_not_ready() -> None:
    exe = running(1, 10, None, ("main",), cpus=2, mem=100)
    waiting: list[Task] = []
    small = sched_node(R(cpus=1, mem=1000))
    assert small.accept_job_exe_next_task(exe, waiting) is True and [t.kind for t in waiting] == [
        "main"
    ]
    offline = sched_node(R(cpus=8, mem=1000), node=ready_node(is_online=False))
    assert offline.accept_job_exe_next_task(exe, []) is False
    assert offline.allocated_resources.cpus == 0
    degraded = ready_node()
    degraded.conditions.activate_error(NodeErrorName.HEALTH_FAIL, WHEN)
    keeps_running = sched_node(R(cpus=8, mem=1000), node=degraded)
    assert keeps_running.accept_job_exe_next_task(exe, []) is False
    assert keeps_running.allocated_resources.cpus == 2  # degraded nodes run what they run


def test_offer_fallback_drops_all_executions_then_all_tasks() -> None:
    node_task = Task("h", "health", R(cpus=0.1, mem=32), agent_id="agent_1")
    node = sched_node(R(cpus=4, mem=4096))
    node.allocated_tasks.append(node_task)
    node._allocate(node_task.resources)
    exe = running(1, 10, None, ("main",), cpus=2, mem=512)
    assert node.accept_job_exe_next_task(exe, []) is False
    small = ResourceOffer("o", "agent_1", R(cpus=1, mem=1024), WHEN)
    node.add_allocated_offers([small])
    assert node.allocated_running_job_exes == [] and node.allocated_tasks == [node_task]
    assert node.allocated_resources.cpus == pytest.approx(0.1)
    tiny = ResourceOffer("o2", "agent_1", R(cpus=0.05, mem=10), WHEN)
    node.add_allocated_offers([tiny])
    assert node.allocated_tasks == [] and node.allocated_resources.is_zero()
    assert node.remaining_resources == node.offered_resources


def test_start_job_exe_tasks_starts_next_tasks_of_allocated_executions() -> None:
    node = sched_node(R(cpus=4, mem=4096))
    exe = running(1, 10, None, ("main", "post"), cpus=1, mem=512)
    node.accept_job_exe_next_task(exe, [])
    node.start_job_exe_tasks()
    assert [t.kind for t in node.allocated_tasks] == ["main"]
    assert exe.current is not None and exe.current.kind == "main"
    assert node.allocated_running_job_exes == []
