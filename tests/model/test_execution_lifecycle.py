"""The execution lifecycle as a state machine (spec §6.5, §6.6), driven by random stimuli.

Status updates (current, stale and foreign task ids), starvation checks, cancellation, node
loss and timeouts arrive in any order; after every step the invariants below must hold.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from loadmaster.model.execution_registry import JobExecutionManager
from loadmaster.model.executions import ExecutionStatus, RunningJobExecution
from loadmaster.model.gpus import GpuTable
from loadmaster.model.tasks import TaskStatus

from .support import T0, execution, status

NODE = 1
JOB = 10
FINAL = frozenset({ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELED})
TASK_STATES = st.sampled_from(
    [
        TaskStatus.STAGING,
        TaskStatus.RUNNING,
        TaskStatus.FINISHED,
        TaskStatus.FAILED,
        TaskStatus.KILLED,
        TaskStatus.LOST,
    ]
)


class ExecutionLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now: datetime = T0
        self.gpus = GpuTable()
        self.gpus.define_node_gpus(NODE, 1)
        assert self.gpus.reserve(NODE, queue_id=1, count=1)
        self.gpus.assign(NODE, queue_id=1, job_id=JOB)
        self.manager = JobExecutionManager(gpus=self.gpus)
        self.exe: RunningJobExecution = execution(1, JOB, node_id=NODE)
        self.manager.schedule_job_exes([self.exe])
        self.seen_ids: set[str] = {t.id for t in self.exe.tasks}
        self.final_seen: tuple[ExecutionStatus, str | None] | None = None
        self.finished_at: datetime | None = None

    # -- stimuli ----------------------------------------------------------------------------
    @rule(seconds=st.integers(min_value=0, max_value=900))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @precondition(lambda self: self.exe.is_next_task_ready())
    @rule()
    def launch_next_task(self) -> None:
        started = self.exe.start_next_task()
        assert started is not None
        started.launch(self.now)

    @precondition(lambda self: self.exe.current is not None)
    @rule(state=TASK_STATES, exit_code=st.sampled_from([None, 0, 1, 2]))
    def current_task_update(self, state: TaskStatus, exit_code: int | None) -> None:
        current = self.exe.current
        assert current is not None
        self.manager.handle_task_update(status(current.id, state, self.now, exit_code), self.now)

    @rule(data=st.data(), state=TASK_STATES)
    def stale_or_foreign_update(self, data: st.DataObject, state: TaskStatus) -> None:
        """An update for any id but the current task's changes nothing."""
        current_id = self.exe.current.id if self.exe.current is not None else None
        candidates = sorted(self.seen_ids - {current_id} | {"loadmaster_job_fw_99x1_main"})
        task_id = data.draw(st.sampled_from(candidates))
        before = self._snapshot()
        self.manager.handle_task_update(status(task_id, state, self.now), self.now)
        assert self._snapshot() == before

    @rule()
    def check_starvation(self) -> None:
        self.manager.check_for_starvation(self.now)

    @rule()
    def cancel(self) -> None:
        self.manager.cancel(self.exe.id, self.now)

    @rule()
    def node_lost(self) -> None:
        self.manager.lost_job_exes([self.exe.id], self.now)

    @precondition(lambda self: self.exe.current is not None)
    @rule()
    def current_task_times_out(self) -> None:
        current = self.exe.current
        assert current is not None
        self.manager.handle_task_timeout(current, self.now)

    def _snapshot(self) -> tuple[object, ...]:
        exe = self.exe
        return (
            exe.status,
            exe.error,
            exe.current.id if exe.current else None,
            tuple(t.id for t in exe.remaining),
            exe.last_task_finished,
            tuple((t.launched, t.started, t.ended) for t in exe.tasks),
        )

    # -- invariants -------------------------------------------------------------------------
    @invariant()
    def status_never_leaves_a_final_state(self) -> None:
        exe = self.exe
        if self.final_seen is not None:
            assert (exe.status, exe.error) == self.final_seen
            assert exe.finished == self.finished_at
        elif exe.status in FINAL:
            self.final_seen = (exe.status, exe.error)
            self.finished_at = exe.finished
            assert exe.finished is not None

    @invariant()
    def current_task_is_launched_and_live(self) -> None:
        current = self.exe.current
        if current is not None:
            assert current.has_been_launched
            assert not current.has_ended
            assert current not in self.exe.remaining

    @invariant()
    def remaining_tasks_are_not_launched(self) -> None:
        for remaining in self.exe.remaining:
            assert not remaining.has_been_launched
            assert not remaining.has_ended

    @invariant()
    def remaining_tasks_keep_the_step_order(self) -> None:
        exe = self.exe
        done = len(exe.tasks) - len(exe.remaining)
        assert exe.remaining == exe.tasks[done:]

    @invariant()
    def finished_iff_final_with_nothing_current_or_remaining(self) -> None:
        exe = self.exe
        if exe.status in FINAL:
            assert exe.remaining == []
            assert exe.is_finished() is (exe.current is None)
        else:
            assert exe.status is ExecutionStatus.RUNNING
            assert not exe.is_finished()

    @invariant()
    def completed_means_every_task_finished(self) -> None:
        exe = self.exe
        if exe.status is ExecutionStatus.COMPLETED:
            assert exe.error is None
            assert all(t.final_status is TaskStatus.FINISHED for t in exe.tasks)
        if exe.status is ExecutionStatus.FAILED:
            assert exe.error is not None

    @invariant()
    def starved_means_failed_for_starvation(self) -> None:
        if self.exe.starved:
            assert self.exe.status is ExecutionStatus.FAILED
            assert self.exe.error == "resource-starvation"

    @invariant()
    def task_ids_are_unique_and_derived_from_the_base_id(self) -> None:
        ids = [t.id for t in self.exe.tasks]
        assert len(set(ids)) == len(ids)
        for task in self.exe.tasks:
            base = f"{self.exe.spec.cluster_id}_{task.kind}"
            assert task.id == base or task.id.startswith(f"{base}_lost-")
        self.seen_ids.update(ids)

    @invariant()
    def registry_and_gpus_follow_the_end(self) -> None:
        if self.exe.is_finished():
            assert self.manager.get(self.exe.id) is None
            assert self.gpus.visible_devices(NODE, JOB) == ""
            assert self.gpus.available(NODE) == 1
        else:
            assert self.manager.get(self.exe.id) is self.exe
            assert self.gpus.visible_devices(NODE, JOB) == "0"
            current = self.exe.current
            if current is not None:
                assert self.manager.for_task(current.id) is self.exe


ExecutionLifecycle.TestCase.settings = settings(max_examples=150, stateful_step_count=40)
TestExecutionLifecycle = ExecutionLifecycle.TestCase
