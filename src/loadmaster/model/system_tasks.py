"""System tasks: services the scheduler keeps running ahead of new jobs (spec §7).

While any system task waits for resources no new job execution is scheduled, so a service
cannot be starved by batch work. A service declares how many instances it wants; surplus ones
are killed and ended ones are replaced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from loadmaster.model.tasks import Task, TaskStatus, TaskStatusUpdate
from loadmaster.resources import Resources


class SystemTaskSource(Protocol):
    def get_tasks_to_schedule(self, when: datetime) -> Sequence[Task]: ...


@dataclass(slots=True)
class StaticSystemTasks:
    """A fixed list of pending system tasks (a snapshot's)."""

    tasks: list[Task] = field(default_factory=list)

    def get_tasks_to_schedule(self, when: datetime) -> Sequence[Task]:
        return [t for t in self.tasks if not t.has_been_launched]


@dataclass(slots=True, frozen=True)
class ServiceSpec:
    name: str
    command: tuple[str, ...]
    resources: Resources
    desired_count: int = 1
    shell: bool = False
    environment: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Service:
    spec: ServiceSpec
    tasks: dict[str, Task] = field(default_factory=dict)
    restarts: int = 0


@dataclass(slots=True)
class SystemTaskManager:
    """Keeps each declared service at its desired instance count."""

    framework_id: str
    services: dict[str, Service] = field(default_factory=dict)
    _counter: int = 0

    @classmethod
    def of(cls, framework_id: str, specs: Sequence[ServiceSpec]) -> SystemTaskManager:
        return cls(framework_id, {s.name: Service(s) for s in specs})

    def _new_task(self, service: Service) -> Task:
        self._counter += 1
        spec = service.spec
        return Task(
            id=f"loadmaster_service_{self.framework_id}_{spec.name}_{self._counter}",
            kind=spec.name,
            resources=spec.resources,
            name=f"service {spec.name}",
            command=spec.command,
            shell=spec.shell,
            environment=dict(spec.environment),
            running_timeout=None,
            staging_timeout=timedelta(minutes=2),
        )

    def get_tasks_to_schedule(self, when: datetime) -> list[Task]:
        pending: list[Task] = []
        for service in self.services.values():
            for _ in range(max(service.spec.desired_count - len(service.tasks), 0)):
                task = self._new_task(service)
                service.tasks[task.id] = task
            pending.extend(t for t in service.tasks.values() if not t.has_been_launched)
        return pending

    def handle_task_update(self, update: TaskStatusUpdate) -> bool:
        for service in self.services.values():
            task = service.tasks.get(update.task_id)
            if task is None:
                continue
            task.update(update)
            if task.has_ended:
                del service.tasks[update.task_id]
                if update.status is not TaskStatus.KILLED:
                    service.restarts += 1
            return True
        return False

    def get_tasks_to_kill(self) -> list[Task]:
        surplus: list[Task] = []
        for service in self.services.values():
            extra = len(service.tasks) - service.spec.desired_count
            if extra > 0:
                surplus.extend(list(service.tasks.values())[:extra])
        return surplus

    def owns(self, task_id: str) -> bool:
        return any(task_id in s.tasks for s in self.services.values())
