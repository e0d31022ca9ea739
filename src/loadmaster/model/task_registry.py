"""Tasks launched on the cluster and not yet ended (spec §6.3).

Their resources are what an agent is known to be running; timeouts, kills and reconciliation
are read from here by the service loops.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from loadmaster.model.tasks import Task, TaskStatus, TaskStatusUpdate


@dataclass(slots=True)
class TaskRegistry:
    _tasks: dict[str, Task] = field(default_factory=dict)

    def add_running(self, task: Task) -> None:
        """Register a task that is already running (a snapshot or a reconciled restart)."""
        self._tasks[task.id] = task

    def launch_tasks(self, tasks: Iterable[Task], when: datetime) -> None:
        for task in tasks:
            task.launch(when)
            self._tasks[task.id] = task

    def handle_task_update(self, update: TaskStatusUpdate) -> Task | None:
        task = self._tasks.get(update.task_id)
        if task is None:
            return None
        task.update(update)
        if task.has_ended or update.status is TaskStatus.LOST:
            del self._tasks[update.task_id]
        return task

    def get(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def get_all_tasks(self) -> list[Task]:
        return list(self._tasks.values())

    def get_tasks_to_kill(self) -> list[Task]:
        return [t for t in self._tasks.values() if t.needs_killed()]

    def get_tasks_to_reconcile(self, when: datetime) -> list[Task]:
        return [t for t in self._tasks.values() if t.needs_reconciliation(when)]

    def get_timeout_tasks(self, when: datetime) -> list[Task]:
        return [t for t in self._tasks.values() if t.check_timeout(when)]
