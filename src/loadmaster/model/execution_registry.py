"""The registry of running job executions (spec §6.6), without threads or globals.

Task updates are routed through an index of task ids, never by splitting ids on `_`: node,
agent and framework ids may contain underscores (scheduling spec §12.2 defect 22). Every way an
execution can end — finished, failed, starved, lost, canceled — passes through `_finish`, which
is where its GPUs are given back (defect 5).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from loadmaster.model.executions import RunningJobExecution
from loadmaster.model.gpus import GpuTable
from loadmaster.model.tasks import Task, TaskStatus, TaskStatusUpdate


@dataclass(slots=True)
class JobExecutionManager:
    gpus: GpuTable = field(default_factory=GpuTable)
    _running: dict[int, RunningJobExecution] = field(default_factory=dict)
    _by_task: dict[str, int] = field(default_factory=dict)
    _ids_by_exe: dict[int, set[str]] = field(default_factory=dict)
    finished: list[RunningJobExecution] = field(default_factory=list)

    def schedule_job_exes(self, executions: Iterable[RunningJobExecution]) -> None:
        """Register new executions (a cycle adds thousands: `_index` inlined, same entries in
        the same order). Every step's id is indexed, of tasks not built yet too (`task_ids`
        builds none)."""
        running = self._running
        by_task = self._by_task
        ids_by_exe = self._ids_by_exe
        for exe in executions:
            exe_id = exe.id
            running[exe_id] = exe
            task_ids = exe.task_ids()
            by_task.update(dict.fromkeys(task_ids, exe_id))
            known = ids_by_exe.get(exe_id)
            if known is None:
                ids_by_exe[exe_id] = set(task_ids)
            else:
                known.update(task_ids)

    def _index(self, exe: RunningJobExecution) -> None:
        ids = self._ids_by_exe.setdefault(exe.id, set())
        for task_id in exe.task_ids():
            self._by_task[task_id] = exe.id
            ids.add(task_id)

    def running(self) -> list[RunningJobExecution]:
        return list(self._running.values())

    def get(self, execution_id: int) -> RunningJobExecution | None:
        return self._running.get(execution_id)

    def for_task(self, task_id: str) -> RunningJobExecution | None:
        exe_id = self._by_task.get(task_id)
        return self._running.get(exe_id) if exe_id is not None else None

    def handle_task_update(
        self, update: TaskStatusUpdate, when: datetime
    ) -> RunningJobExecution | None:
        """Apply an update; the execution is returned when it finished because of it."""
        exe = self.for_task(update.task_id)
        if exe is None:
            return None
        exe.task_update(update, when)
        if update.status is TaskStatus.LOST:
            self._index(exe)  # a lost task is renamed (its next launch has a new id)
        if exe.is_finished():
            self._finish(exe)
            return exe
        return None

    def handle_task_timeout(self, task: Task, when: datetime) -> None:
        exe = self.for_task(task.id)
        if exe is not None:
            exe.execution_timed_out(task, when)

    def check_for_starvation(self, when: datetime) -> list[RunningJobExecution]:
        finished = [
            exe
            for exe in list(self._running.values())
            if exe.check_for_starvation(when) and exe.is_finished()
        ]
        for exe in finished:
            self._finish(exe)
        return finished

    def lost_job_exes(
        self, execution_ids: Iterable[int], when: datetime
    ) -> list[RunningJobExecution]:
        finished: list[RunningJobExecution] = []
        for exe_id in execution_ids:
            exe = self._running.get(exe_id)
            if exe is None:
                continue
            exe.execution_lost(when)
            if exe.is_finished():
                self._finish(exe)
                finished.append(exe)
        return finished

    def cancel(self, execution_id: int, when: datetime) -> RunningJobExecution | None:
        """Cancel a running execution; returned if it ended at once (no live task to kill)."""
        exe = self._running.get(execution_id)
        if exe is None:
            return None
        exe.execution_canceled(when)
        if exe.is_finished():
            self._finish(exe)
            return exe
        return None

    def _finish(self, exe: RunningJobExecution) -> None:
        self._running.pop(exe.id, None)
        for task_id in self._ids_by_exe.pop(exe.id, ()):  # every incarnation, lost ones too
            self._by_task.pop(task_id, None)
        self.gpus.release(exe.node_id, exe.job_id)
        self.finished.append(exe)

    def drain_finished(self) -> list[RunningJobExecution]:
        out, self.finished = self.finished, []
        return out
