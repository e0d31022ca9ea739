"""Rules of the cycle's order of steps (spec §8.1–§8.6), one test per rule."""

from __future__ import annotations

from datetime import timedelta

from tests.scheduling.harness import cycle, entry, job_type, node, offer, snapshot, state_of

from loadmaster.model.executions import ExecutionStatus
from loadmaster.model.offers import ResourceOffer
from loadmaster.model.tasks import TaskStatus, TaskStatusUpdate
from loadmaster.plan.builder import RecordingClient
from loadmaster.resources import Resources
from loadmaster.scheduling.manager import TASK_SHORTAGE_WAIT_COUNT
from loadmaster.scheduling.reasons import ReasonCode


def exe(
    i: int,
    node_id: int = 1,
    priority: int = 100,
    current: str | None = None,
    remaining: list[str] | None = None,
    cpus: float = 1.0,
    agent: str | None = None,
) -> dict[str, object]:
    return {
        "id": i,
        "job_type_id": 1,
        "node_id": node_id,
        "agent_id": agent or f"agent_{node_id}",
        "priority": priority,
        "resources": {"cpus": cpus, "mem": 512.0},
        "current_task": current,
        "remaining_tasks": remaining if remaining is not None else ["main"],
    }


def test_not_connected_does_nothing() -> None:
    state = state_of(snapshot(nodes=[node(1)], offers=[offer(1, 4, 4096)], queue=[entry(1)]))
    report = cycle(state, RecordingClient(framework=None))
    assert report.abandoned and report.tasks_launched == 0 and report.scheduled == []
    assert len(state.store.queued()) == 1


def test_a_node_whose_running_work_waits_takes_no_new_work() -> None:
    # host_1 has room for the small entry but not for exe 7's next task: it must drain for it.
    doc = snapshot(
        nodes=[node(1), node(2)],
        offers=[offer(1, 1.0, 4096), offer(2, 1.0, 4096)],
        running_executions=[exe(7, cpus=2.0)],
        queue=[entry(1, cpus=0.5, mem=128)],
    )
    report = cycle(state_of(doc))
    assert [(s.queue_id, s.node_id) for s in report.scheduled] == [(1, 2)]
    assert [(w.kind, w.execution_id) for w in report.waiting_tasks] == [("main", 7)]


def test_node_tasks_are_served_before_next_tasks_of_executions() -> None:
    doc = snapshot(
        nodes=[
            node(
                1,
                pending_node_tasks=[
                    {"id": "h1", "kind": "health", "resources": {"cpus": 0.5, "mem": 32}}
                ],
            )
        ],
        offers=[offer(1, 1.0, 4096)],
        running_executions=[exe(7, cpus=1.0)],
    )
    report = cycle(state_of(doc))
    assert [t.id for t in report.launches[0].tasks] == ["h1"]
    assert [w.execution_id for w in report.waiting_tasks] == [7]


def test_waiting_system_tasks_block_new_jobs_and_canceled_entries_stay() -> None:
    doc = snapshot(
        nodes=[node(1)],
        offers=[offer(1, 4.0, 256)],
        system_tasks=[
            {"id": "svc", "kind": "message-handler", "resources": {"cpus": 0.5, "mem": 512.0}}
        ],
        queue=[entry(1, cpus=0.5, mem=128), {**entry(2), "is_canceled": True}],
    )
    state = state_of(doc)
    report = cycle(state)
    assert report.scheduled == [] and report.canceled == []
    assert {u.reason for u in report.unscheduled} == {ReasonCode.WAITING_SYSTEM_TASKS}
    assert len(state.store.queued()) == 2


def test_an_execution_whose_agent_changed_is_lost() -> None:
    doc = snapshot(
        nodes=[node(1)],
        offers=[offer(1, 4.0, 4096)],
        running_executions=[exe(7, agent="agent_old")],
    )
    report = cycle(state_of(doc))
    assert report.lost_executions == [7]
    assert report.finished_executions == [7]  # nothing was running: it ends at once


def test_starved_execution_fails_and_goes_to_cleanup() -> None:
    doc = snapshot(
        job_types=[job_type(steps=["main", "post"])],
        nodes=[node(1)],
        offers=[offer(1, 4.0, 4096)],
        queue=[entry(1)],
    )
    state = state_of(doc)
    (task,) = cycle(state).launches[0].tasks
    done = TaskStatusUpdate(task.id, "agent_1", TaskStatus.FINISHED, state.when, exit_code=0)
    state.manager.tasks.handle_task_update(done)
    state.manager.executions.handle_task_update(done, state.when)
    # no offers for 10 minutes and a bit: the post task cannot start
    report = cycle(state, after_seconds=601)
    assert report.finished_executions == [1]
    exe_record = state.manager.executions.finished[-1]
    assert exe_record.status is ExecutionStatus.FAILED and exe_record.error == "resource-starvation"
    host = state.manager.nodes.get(1)
    assert host is not None and host.awaiting_cleanup == [1]


def test_a_task_waiting_ten_cycles_becomes_its_agents_shortage() -> None:
    state = state_of(snapshot(nodes=[node(1)], running_executions=[exe(7, cpus=2.0)]))
    for i in range(TASK_SHORTAGE_WAIT_COUNT - 1):
        report = cycle(state, after_seconds=i)
        assert state.manager.offers.agent("agent_1").shortage is None
    report = cycle(state, after_seconds=TASK_SHORTAGE_WAIT_COUNT)
    assert report.waiting_tasks[0].cycles_waiting == TASK_SHORTAGE_WAIT_COUNT
    shortage = state.manager.offers.agent("agent_1").shortage
    assert shortage is not None and shortage.cpus == 2.0


def test_limits_count_placements_within_the_cycle() -> None:
    doc = snapshot(
        job_types=[job_type(max_scheduled=2)],
        nodes=[node(1)],
        offers=[offer(1, 16.0, 16384)],
        queue=[entry(i) for i in range(1, 5)],
    )
    report = cycle(state_of(doc))
    assert [s.queue_id for s in report.scheduled] == [1, 2]
    assert [u.reason for u in report.unscheduled] == [ReasonCode.JOB_TYPE_LIMIT] * 2


def test_fifo_and_lifo_decide_who_gets_the_last_slot() -> None:
    queue = [entry(1), entry(2)]  # entry 1 queued earlier
    for mode, winner in (("FIFO", 1), ("LIFO", 2)):
        doc = snapshot(
            scheduler={"queue_mode": mode},
            nodes=[node(1)],
            offers=[offer(1, 1.0, 4096)],
            queue=queue,
        )
        assert [s.queue_id for s in cycle(state_of(doc)).scheduled] == [winner]


def test_priority_beats_age() -> None:
    doc = snapshot(
        nodes=[node(1)],
        offers=[offer(1, 1.0, 4096)],
        queue=[entry(1, priority=200), entry(2, priority=5)],
    )
    assert [s.queue_id for s in cycle(state_of(doc)).scheduled] == [2]


def test_scheduled_entries_become_executions_in_the_store_and_leave_the_queue() -> None:
    doc = snapshot(
        nodes=[node(1)],
        offers=[offer(1, 4.0, 4096)],
        queue=[entry(1), {**entry(2), "is_canceled": True}],
    )
    state = state_of(doc)
    report = cycle(state)
    assert state.store.queued() == []
    statuses = sorted((r.queue_id, r.status) for r in state.store.executions.values())
    assert statuses == [(1, "RUNNING"), (2, "CANCELED")]
    assert report.scheduled[0].execution_id == next(
        r.id for r in state.store.executions.values() if r.queue_id == 1
    )


def test_next_cycle_runs_the_next_step() -> None:
    doc = snapshot(
        job_types=[job_type(steps=["pre", "main"])],
        nodes=[node(1)],
        offers=[offer(1, 4.0, 4096)],
        queue=[entry(1)],
    )
    state = state_of(doc)
    (pre,) = cycle(state).launches[0].tasks
    assert pre.kind == "pre"
    done = TaskStatusUpdate(pre.id, "agent_1", TaskStatus.FINISHED, state.when, exit_code=0)
    state.manager.tasks.handle_task_update(done)
    state.manager.executions.handle_task_update(done, state.when)
    state.manager.offers.add_new_offers(
        [ResourceOffer("o2", "agent_1", Resources.of(cpus=4, mem=4096), state.when)]
    )
    report = cycle(state, after_seconds=1)
    assert [(t.kind, t.execution_id) for launch in report.launches for t in launch.tasks] == [
        ("main", 1)
    ]
    assert report.scheduled == []


def test_warnings_expire_only_when_not_refreshed() -> None:
    state = state_of(
        snapshot(nodes=[node(1)], offers=[offer(1, 4.0, 4096)], queue=[entry(1, job_type=9)])
    )
    cycle(state)
    board = state.manager.warnings
    board.expire(state.when + timedelta(minutes=59))
    assert board.is_active("UNKNOWN_JOB_TYPE", "#9")
    board.expire(state.when + timedelta(hours=1))
    assert not board.is_active("UNKNOWN_JOB_TYPE", "#9")
