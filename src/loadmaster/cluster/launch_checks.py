"""What every backend checks before it launches tasks on offers, in one place.

Invalid offers make every task LOST (it may be launched again elsewhere); a task that is
itself invalid, or tasks that together need more than the offers hold, are FAILED — Mesos'
TASK_LOST and TASK_ERROR. The offers are spent either way; the caller drops them.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence

from loadmaster.cluster.local_taskdir import is_safe_name
from loadmaster.model.offers import ResourceOffer
from loadmaster.model.tasks import Task, TaskStatus
from loadmaster.resources import total

Report = Callable[..., None]  # (task_id, agent_id, status, exit_code=None, message=None)


def offers_problem(offers: Sequence[ResourceOffer], outstanding: Container[str]) -> str | None:
    """Why these offers cannot be used together, or None."""
    if not offers:
        return "no offer was given for the tasks"
    unknown = [o.id for o in offers if o.id not in outstanding]
    if unknown:
        return f"offers {unknown} are not outstanding (used, declined or rescinded)"
    agent_ids = {o.agent_id for o in offers}
    if len(agent_ids) != 1:
        return f"offers of more than one agent: {sorted(agent_ids)}"
    return None


def task_problem(
    task: Task, agent_id: str, in_use: Container[str], accepted: Sequence[Task]
) -> str | None:
    """Why this task cannot be launched on that agent, or None."""
    if not is_safe_name(task.id):
        return f"task id {task.id!r} cannot name a directory"
    if task.id in in_use or any(t.id == task.id for t in accepted):
        return f"task id {task.id} is already in use"
    if task.agent_id is not None and task.agent_id != agent_id:
        return f"task is for agent {task.agent_id}, the offers are of {agent_id}"
    if task.shell and len(task.command) > 1:
        return "a shell task takes exactly one command string"
    return None


def launch_checked(
    offers: Sequence[ResourceOffer],
    tasks: Sequence[Task],
    agent_id: str | None,
    problem: str,
    in_use: Container[str],
    report: Report,
    launch: Callable[[Task], None],
) -> None:
    """Report LOST/FAILED for what cannot run and launch the rest; `agent_id` None means the
    offers were refused for `problem`."""
    if agent_id is None:
        for task in tasks:
            report(task.id, task.agent_id or "", TaskStatus.LOST, message=problem)
        return
    valid: list[Task] = []
    for task in tasks:
        invalid = task_problem(task, agent_id, in_use, valid)
        if invalid is None:
            valid.append(task)
        else:
            report(task.id, agent_id, TaskStatus.FAILED, message=invalid)
    offered = total(o.resources for o in offers).round_values()
    needed = total(t.resources for t in valid).round_values()
    if not offered.is_sufficient_to_meet(needed):
        message = f"tasks need {needed}, the offers hold {offered}"
        for task in valid:
            report(task.id, agent_id, TaskStatus.FAILED, message=message)
        return
    for task in valid:
        launch(task)
