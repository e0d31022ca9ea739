"""System tasks: services kept at their desired instance count (spec §7)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from loadmaster.model.system_tasks import ServiceSpec, StaticSystemTasks, SystemTaskManager
from loadmaster.model.tasks import TaskStatus
from loadmaster.resources import Resources

from .support import T0, at, status, task

S = TaskStatus
HANDLER = ServiceSpec(
    "message-handler",
    ("loadmaster", "handle-messages"),
    Resources.of(cpus=0.5, mem=512.0),
    desired_count=2,
)


def manager(*specs: ServiceSpec) -> SystemTaskManager:
    return SystemTaskManager.of("fw", specs or (HANDLER,))


def set_desired(made: SystemTaskManager, name: str, count: int) -> None:
    service = made.services[name]
    service.spec = replace(service.spec, desired_count=count)


@pytest.mark.parametrize(
    ("desired", "expected_ids"),
    [
        (0, []),
        (1, ["loadmaster_service_fw_message-handler_1"]),
        (
            3,
            [
                "loadmaster_service_fw_message-handler_1",
                "loadmaster_service_fw_message-handler_2",
                "loadmaster_service_fw_message-handler_3",
            ],
        ),
    ],
    ids=["zero-desired-creates-none", "one-desired-creates-one", "three-desired-creates-three"],
)
def test_desired_count_creates_tasks(desired: int, expected_ids: list[str]) -> None:
    made = manager(replace(HANDLER, desired_count=desired))
    got = made.get_tasks_to_schedule(T0)
    assert [t.id for t in got] == expected_ids
    for created in got:
        assert created.kind == "message-handler"
        assert created.resources == Resources.of(cpus=0.5, mem=512.0)
        assert created.running_timeout is None
        assert created.staging_timeout == timedelta(minutes=2)
        assert created.agent_id is None
        assert created.command == ("loadmaster", "handle-messages")


def test_pending_tasks_are_offered_again_until_launched() -> None:
    made = manager()
    first = made.get_tasks_to_schedule(T0)
    again = made.get_tasks_to_schedule(at(1))
    assert again == first
    first[0].launch(at(2))
    assert made.get_tasks_to_schedule(at(3)) == [first[1]]


def test_surplus_tasks_are_to_be_killed_first_ones_first() -> None:
    made = manager(replace(HANDLER, desired_count=3))
    created = made.get_tasks_to_schedule(T0)
    assert made.get_tasks_to_kill() == []
    set_desired(made, "message-handler", 1)
    assert made.get_tasks_to_kill() == created[:2]
    assert made.get_tasks_to_kill() == created[:2]  # asked again until they end
    assert made.get_tasks_to_schedule(at(1)) == created  # nothing new is created
    for victim in created[:2]:
        victim.launch(at(1))
        made.handle_task_update(status(victim.id, S.KILLED, at(2)))
    assert made.get_tasks_to_kill() == []
    assert list(made.services["message-handler"].tasks.values()) == [created[2]]


@pytest.mark.parametrize(
    ("final", "restarts"),
    [(S.FINISHED, 1), (S.FAILED, 1), (S.KILLED, 0)],
    ids=["finished-is-replaced", "failed-is-replaced", "killed-is-replaced-without-a-restart"],
)
def test_ended_tasks_are_replaced(final: TaskStatus, restarts: int) -> None:
    made = manager(replace(HANDLER, desired_count=1))
    [first] = made.get_tasks_to_schedule(T0)
    first.launch(T0)
    assert made.handle_task_update(status(first.id, final, at(1))) is True
    assert made.services["message-handler"].tasks == {}
    assert made.services["message-handler"].restarts == restarts
    [second] = made.get_tasks_to_schedule(at(2))
    assert second.id == "loadmaster_service_fw_message-handler_2"
    assert not second.has_been_launched


def test_lost_task_is_offered_again_under_the_same_id() -> None:
    made = manager(replace(HANDLER, desired_count=1))
    [first] = made.get_tasks_to_schedule(T0)
    first.launch(T0)
    assert made.get_tasks_to_schedule(at(1)) == []
    made.handle_task_update(status(first.id, S.LOST, at(2)))
    assert not first.has_been_launched
    assert made.get_tasks_to_schedule(at(3)) == [first]
    assert made.services["message-handler"].restarts == 0


def test_running_update_keeps_the_task() -> None:
    made = manager(replace(HANDLER, desired_count=1))
    [first] = made.get_tasks_to_schedule(T0)
    first.launch(T0)
    made.handle_task_update(status(first.id, S.RUNNING, at(1)))
    assert made.owns(first.id)
    assert first.has_started


def test_update_for_an_unknown_task_is_not_ours() -> None:
    made = manager()
    made.get_tasks_to_schedule(T0)
    assert made.handle_task_update(status("stranger", S.FINISHED)) is False
    assert not made.owns("stranger")


def test_services_are_served_in_declaration_order() -> None:
    db = ServiceSpec("db-update", ("loadmaster", "db-update"), Resources.of(cpus=0.5))
    made = manager(db, replace(HANDLER, desired_count=1))
    assert [t.kind for t in made.get_tasks_to_schedule(T0)] == ["db-update", "message-handler"]


def test_static_system_tasks_offers_only_tasks_not_launched() -> None:
    waiting, launched = task("s1", kind="db-update"), task("s2", kind="db-update")
    launched.launch(T0)
    static = StaticSystemTasks([waiting, launched])
    assert list(static.get_tasks_to_schedule(at(1))) == [waiting]
    assert list(StaticSystemTasks().get_tasks_to_schedule(T0)) == []
