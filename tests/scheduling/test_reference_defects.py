"""Each fixed reference defect (scheduling spec §12.2) with a test the reference would fail."""

from __future__ import annotations

from datetime import timedelta

from tests.scheduling.harness import cycle, entry, job_type, node, offer, snapshot, state_of

from loadmaster.model.offers import ResourceOffer
from loadmaster.model.tasks import TaskStatus, TaskStatusUpdate
from loadmaster.plan.builder import RecordingClient
from loadmaster.resources import Resources
from loadmaster.scheduling.reasons import ReasonCode


def test_defect_1_a_custom_resource_does_not_halt_the_cycle() -> None:
    state = state_of(
        snapshot(nodes=[node(1)], offers=[offer(1, 4, 4096, foo=3.0)], queue=[entry(1)])
    )
    report = cycle(state)
    assert [s.queue_id for s in report.scheduled] == [1]
    assert report.cluster_total.get("foo") == 3.0 and report.largest_node.get("foo") == 3.0


def test_defect_2_an_unknown_job_type_does_not_abort_the_cycle() -> None:
    state = state_of(
        snapshot(
            nodes=[node(1)], offers=[offer(1, 4, 4096)], queue=[entry(1, job_type=42), entry(2)]
        )
    )
    report = cycle(state)
    assert [s.queue_id for s in report.scheduled] == [2]
    assert [(u.queue_id, u.reason) for u in report.unscheduled] == [
        (1, ReasonCode.UNKNOWN_JOB_TYPE)
    ]
    assert report.declined_offers == [] and report.tasks_launched == 1


class CountingStore:
    """Wraps the memory store to count unmet-resource writes."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.unmet_writes: list[dict[int, str | None]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def record_unmet_resources(self, changes: dict[int, str | None]) -> None:
        self.unmet_writes.append(dict(changes))


def test_defect_3_unmet_resources_are_rechecked_every_cycle_and_written_only_on_change() -> None:
    state = state_of(
        snapshot(nodes=[node(1)], offers=[offer(1, 4, 4096)], queue=[entry(1, cpus=8.0, mem=512.0)])
    )
    store = CountingStore(state.manager.store)
    state.manager.store = store  # type: ignore[assignment]
    first = cycle(state)
    assert [u.reason for u in first.unscheduled] == [ReasonCode.INSUFFICIENT_RESOURCES]
    assert store.unmet_writes == [{1: "cpus"}]
    cycle(state, after_seconds=1)  # same condition: no write at all
    assert store.unmet_writes == [{1: "cpus"}]
    # The cluster grows a minute later (the reference would skip the type for up to an hour).
    state.manager.offers.add_new_offers(
        [
            ResourceOffer(
                "big",
                "agent_1",
                Resources.of(cpus=16, mem=8192),
                state.when + timedelta(seconds=60),
            )
        ]
    )
    grown = cycle(state, after_seconds=60)
    assert [s.queue_id for s in grown.scheduled] == [1]
    assert store.unmet_writes[-1] == {1: None}
    assert not state.manager.warnings.is_active("INSUFFICIENT_RESOURCES", "ingest")


def test_defect_4_a_system_task_goes_to_a_ready_node_even_if_a_paused_one_scores_better() -> None:
    # host_1 is PAUSED (image pulled, so fulfilled) and would pack tighter; host_2 is READY.
    doc = snapshot(
        nodes=[node(1, "PAUSED"), node(2)],
        offers=[offer(1, 1.0, 600.0), offer(2, 8.0, 8192.0)],
        system_tasks=[
            {"id": "svc-1", "kind": "message-handler", "resources": {"cpus": 0.5, "mem": 512.0}}
        ],
        queue=[entry(1)],
    )
    report = cycle(state_of(doc))
    assert report.system_tasks_scheduled == ["svc-1"]
    assert [s.queue_id for s in report.scheduled] == [1]  # new jobs are not blocked
    assert {launch.node_id for launch in report.launches} == {2}


def test_defect_4_a_failed_accept_falls_back_to_the_next_best_node() -> None:
    doc = snapshot(
        job_types=[job_type(1, "train", resources={"cpus": 1.0, "mem": 512.0, "gpus": 1.0})],
        nodes=[node(1), node(2)],
        offers=[offer(1, 2.0, 1024.0, gpus=1.0), offer(2, 8.0, 8192.0, gpus=1.0)],
        queue=[entry(1, cpus=1.0, mem=512.0, gpus=1.0)],
    )
    state = state_of(doc)
    gpus = state.manager.executions.gpus
    gpus.define_node_gpus(1, 1)
    assert gpus.reserve(1, 999, 1)  # host_1's only GPU is held by something else
    report = cycle(state)
    assert [(s.queue_id, s.node_id) for s in report.scheduled] == [(1, 2)]


def test_defect_5_gpu_reservations_are_released_on_reset() -> None:
    doc = snapshot(
        job_types=[job_type(1, "train", resources={"cpus": 1.0, "mem": 512.0, "gpus": 1.0})],
        nodes=[node(1)],
        offers=[offer(1, 4.0, 4096.0, gpus=2.0)],
        queue=[entry(1, cpus=1.0, mem=512.0, gpus=1.0), entry(2, cpus=1.0, mem=512.0, gpus=1.0)],
    )
    state = state_of(doc)
    state.store.fail_next_commit = "database is down"
    report = cycle(state)
    assert report.store_error == "database is down"
    assert {u.reason for u in report.unscheduled} == {ReasonCode.STORE_UNAVAILABLE}
    assert state.manager.executions.gpus.available(1) == 2
    assert report.declined_offers == ["offer_1"]  # offers still go back


def test_defect_5_gpus_are_released_when_an_execution_ends() -> None:
    doc = snapshot(
        job_types=[
            job_type(1, "train", resources={"cpus": 1.0, "mem": 512.0, "gpus": 1.0}, steps=["main"])
        ],
        nodes=[node(1)],
        offers=[offer(1, 4.0, 4096.0, gpus=2.0)],
        queue=[entry(1, cpus=1.0, mem=512.0, gpus=1.0)],
    )
    state = state_of(doc)
    report = cycle(state)
    gpus = state.manager.executions.gpus
    assert gpus.available(1) == 1
    (task,) = report.launches[0].tasks
    update = TaskStatusUpdate(task.id, "agent_1", TaskStatus.FINISHED, state.when, exit_code=0)
    finished = state.manager.executions.handle_task_update(update, state.when)
    assert finished is not None and finished.status == "COMPLETED"
    assert gpus.available(1) == 2


def test_defect_5_gpus_are_released_when_a_lost_execution_ends() -> None:
    doc = snapshot(
        job_types=[
            job_type(1, "train", resources={"cpus": 1.0, "mem": 512.0, "gpus": 1.0}, steps=["main"])
        ],
        nodes=[node(1)],
        offers=[offer(1, 4.0, 4096.0, gpus=1.0)],
        queue=[entry(1, cpus=1.0, mem=512.0, gpus=1.0)],
    )
    state = state_of(doc)
    (task,) = cycle(state).launches[0].tasks
    gpus = state.manager.executions.gpus
    assert gpus.available(1) == 0
    host = state.manager.nodes.get(1)
    assert host is not None
    host.set_online(False)
    lost = cycle(state, after_seconds=1)
    assert len(lost.lost_executions) == 1 and gpus.available(1) == 0  # its task is still live
    update = TaskStatusUpdate(
        task.id, "agent_1", TaskStatus.LOST, state.when + timedelta(seconds=2)
    )
    finished = state.manager.executions.handle_task_update(
        update, state.when + timedelta(seconds=2)
    )
    assert finished is not None and finished.error == "node-lost"
    assert gpus.available(1) == 1


def test_defect_12_max_scheduled_zero_means_none_and_null_unlimited() -> None:
    doc = snapshot(
        job_types=[job_type(1, "none", max_scheduled=0), job_type(2, "any", max_scheduled=None)],
        nodes=[node(1)],
        offers=[offer(1, 16.0, 16384.0)],
        queue=[
            entry(1, job_type=1),
            entry(2, job_type=2),
            entry(3, job_type=2),
            entry(4, job_type=2),
        ],
    )
    report = cycle(state_of(doc))
    assert sorted(s.queue_id for s in report.scheduled) == [2, 3, 4]
    assert [(u.queue_id, u.reason) for u in report.unscheduled] == [(1, ReasonCode.JOB_TYPE_LIMIT)]


class SwitchingClient(RecordingClient):
    """Reports a new framework id after the first question: a re-registration mid-cycle."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def framework_id(self) -> str | None:
        self.calls += 1
        return "fw-1" if self.calls == 1 else "fw-2"


def test_defect_16_offers_are_declined_when_the_cycle_is_abandoned() -> None:
    state = state_of(snapshot(nodes=[node(1)], offers=[offer(1, 4.0, 4096.0)], queue=[entry(1)]))
    client = SwitchingClient()
    report = cycle(state, client)
    assert report.abandoned is not None
    assert report.tasks_launched == 0 and client.accepted == []
    assert [o.id for o in client.declined] == ["offer_1"]


def test_defect_22_ids_with_underscores_route_task_updates() -> None:
    state = state_of(
        snapshot(
            job_types=[job_type(1, steps=["main", "post"])],
            nodes=[node(1)],
            offers=[offer(1, 4.0, 4096.0)],
            queue=[entry(1)],
        )
    )
    client = RecordingClient(framework="my_frame_work_7")
    report = cycle(state, client)
    (task,) = report.launches[0].tasks
    assert task.id == "loadmaster_job_my_frame_work_7_101x1_main"
    update = TaskStatusUpdate(task.id, "agent_1", TaskStatus.FINISHED, state.when, exit_code=0)
    assert state.manager.executions.handle_task_update(update, state.when) is None  # post remains
    exe = state.manager.executions.for_task("loadmaster_job_my_frame_work_7_101x1_post")
    assert exe is not None and exe.next_task() is not None and exe.next_task().kind == "post"  # type: ignore[union-attr]


def test_defect_23_ties_go_to_the_earlier_node_in_node_order() -> None:
    nodes = [node(1), node(2)]
    offers = [offer(1, 4.0, 4096.0), offer(2, 4.0, 4096.0)]
    first = cycle(state_of(snapshot(nodes=nodes, offers=offers, queue=[entry(1)])))
    flipped = cycle(state_of(snapshot(nodes=nodes[::-1], offers=offers, queue=[entry(1)])))
    assert first.scheduled[0].node_id == 1
    assert flipped.scheduled[0].node_id == 2
    assert first.scheduled[0].score == flipped.scheduled[0].score


class FailingQueueStore:
    def __init__(self, inner: object) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def fetch_queue(self, query: object) -> object:
        from loadmaster.scheduling.ports import StoreUnavailable

        raise StoreUnavailable("connection refused")


def test_an_unreadable_queue_still_serves_work_under_way() -> None:
    state = state_of(
        snapshot(
            nodes=[node(1)],
            offers=[offer(1, 4.0, 4096.0)],
            queue=[entry(1)],
            running_executions=[
                {
                    "id": 7,
                    "job_type_id": 1,
                    "node_id": 1,
                    "agent_id": "agent_1",
                    "priority": 1,
                    "resources": {"cpus": 1.0, "mem": 512.0},
                    "remaining_tasks": ["main"],
                }
            ],
        )
    )
    state.manager.store = FailingQueueStore(state.manager.store)  # type: ignore[assignment]
    report = cycle(state)
    assert report.store_error == "connection refused"
    assert [(t.kind, t.execution_id) for launch in report.launches for t in launch.tasks] == [
        ("main", 7)
    ]
