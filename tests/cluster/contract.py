"""The contract every cluster backend passes: one suite, one harness per backend.

A backend's test module subclasses `ClusterBackendContract` and provides a `harness` fixture
(a `BackendHarness`): it creates backends on shared state (so that a second backend can find
the first one's tasks), and says which optional features the backend has; tests of a missing
feature are skipped. Tasks are Python one-liners (`py(...)`), which every real backend can run;
a backend without COMMANDS (the simulated cluster) ignores the command and ends each task after
the run time its harness gives it, so tests that need what a process does are skipped there.

Everything waits by polling with a deadline, never by fixed sleeps.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import pytest

from loadmaster.cluster.protocol import AgentInfo, ClusterBackend
from loadmaster.model.executions import allocated_environment
from loadmaster.model.offers import ResourceOffer
from loadmaster.model.tasks import Task, TaskStatus, TaskStatusUpdate
from loadmaster.resources import Resources

WAIT_SECONDS = 10.0
SMALL = Resources.of(cpus=0.5, mem=64.0, disk=10.0)

# Optional features a harness may list.
RESTART = "restart"  # a new backend on the same state finds the old one's tasks
AGENT_CONTROL = "agent-control"  # stop_agent / start_agent
PROCESS_GROUPS = "process-groups"  # tasks are OS processes; a kill ends the whole group
SHELL = "shell"  # Task.shell runs through /bin/sh
# Tasks run their command for real: exit codes, argv, environment, output and files come from
# the process.
COMMANDS = "commands"


def py(code: str, *args: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code, *args)


def wait_for_file(path: Path, then: str = "") -> tuple[str, ...]:
    """A command that runs until `path` exists (30 s at most), then runs `then`."""
    code = (
        "import os, sys, time\n"
        "deadline = time.time() + 30\n"
        "while not os.path.exists(sys.argv[1]) and time.time() < deadline:\n"
        "    time.sleep(0.01)\n" + then
    )
    return py(code, str(path))


def make_task(
    task_id: str,
    command: tuple[str, ...],
    resources: Resources = SMALL,
    *,
    shell: bool = False,
    environment: dict[str, str] | None = None,
) -> Task:
    return Task(
        id=task_id,
        kind="main",
        resources=resources,
        command=command,
        shell=shell,
        environment=dict(environment or {}),
    )


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        time.sleep(0.01)


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


@dataclass(slots=True)
class StepClock:
    """A clock the tests control: every reading is one second after the previous one."""

    now: datetime = datetime(2030, 1, 1, tzinfo=UTC)
    readings: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self) -> datetime:
        with self.lock:
            self.readings += 1
            self.now += timedelta(seconds=1)
            return self.now


class BackendHarness(Protocol):
    features: frozenset[str]
    clock: StepClock
    scratch: Path  # a directory tasks can read and write

    def create(self) -> ClusterBackend:
        """A new, not yet started backend on the harness's shared state."""
        ...

    def stop_agent(self, backend: ClusterBackend, hostname: str) -> None: ...

    def start_agent(self, backend: ClusterBackend, hostname: str) -> None: ...

    def cleanup(self) -> None:
        """End whatever tasks are left (runs after every backend was shut down)."""
        ...


class Cluster:
    """A started backend with the bookkeeping a test needs: held offers and seen updates."""

    def __init__(self, harness: BackendHarness) -> None:
        self.harness = harness
        self.backends: list[ClusterBackend] = []
        self.updates: list[TaskStatusUpdate] = []
        self.held: dict[str, ResourceOffer] = {}
        self.backend = self._new_backend()

    def _new_backend(self) -> ClusterBackend:
        backend = self.harness.create()
        self.backends.append(backend)
        backend.start()
        return backend

    def restart(self) -> ClusterBackend:
        """Shut down without killing (as a crashing service leaves its tasks) and start a new
        backend on the same state."""
        self.poll()
        self.backend.shutdown(kill_tasks=False)
        self.held.clear()
        self.backend = self._new_backend()
        return self.backend

    def close(self) -> None:
        for backend in self.backends:
            backend.shutdown(kill_tasks=True)
        self.harness.cleanup()

    # -- agents and offers --------------------------------------------------------------------
    def agent(self, hostname: str | None = None) -> AgentInfo:
        agents = self.backend.agents()
        if hostname is None:
            return agents[0]
        return next(a for a in agents if a.hostname == hostname)

    def collect(self) -> list[ResourceOffer]:
        offers = self.backend.collect_offers(datetime.now(UTC))
        for offer in offers:
            self.held[offer.agent_id] = offer
        return offers

    def offer(self, agent_id: str | None = None) -> ResourceOffer:
        """A fresh offer of the agent, still held (the held one is declined first, so the
        offer shows what is free now)."""
        agent_id = agent_id or self.agent().agent_id
        stale = self.held.pop(agent_id, None)
        if stale is not None:
            self.backend.decline_offers([stale])
        self.collect()
        return self.held[agent_id]

    def launch(self, *tasks: Task, agent_id: str | None = None) -> ResourceOffer:
        offer = self.offer(agent_id)
        del self.held[offer.agent_id]
        self.backend.combine_offers([offer], list(tasks))
        return offer

    def run(self, task: Task, agent_id: str | None = None) -> TaskStatusUpdate:
        """Launch and wait for the end (FINISHED, FAILED, KILLED or LOST)."""
        self.launch(task, agent_id=agent_id)
        return self.wait_for(task.id, *_ENDS)

    # -- updates ------------------------------------------------------------------------------
    def poll(self) -> list[TaskStatusUpdate]:
        new = self.backend.collect_updates()
        self.updates.extend(new)
        return new

    def of(self, task_id: str) -> list[TaskStatusUpdate]:
        self.poll()
        return [u for u in self.updates if u.task_id == task_id]

    def statuses(self, task_id: str) -> list[TaskStatus]:
        return [u.status for u in self.of(task_id)]

    def wait_for(
        self, task_id: str, *statuses: TaskStatus, timeout: float = WAIT_SECONDS, since: int = 0
    ) -> TaskStatusUpdate:
        """The first update of the task, after its first `since` ones, in one of `statuses`."""
        found: list[TaskStatusUpdate] = []

        def seen() -> bool:
            found[:] = [u for u in self.of(task_id)[since:] if u.status in statuses]
            return bool(found)

        wait_until(seen, timeout)
        return found[0]

    def log(self, task_id: str, stream: str = "stdout") -> str:
        return self.backend.read_log(task_id, stream).decode()


_ENDS = (TaskStatus.FINISHED, TaskStatus.FAILED, TaskStatus.KILLED, TaskStatus.LOST)


class ClusterBackendContract:
    """The behaviour every backend shares; subclasses provide the `harness` fixture."""

    @pytest.fixture
    def cluster(self, harness: BackendHarness) -> Iterator[Cluster]:
        cluster = Cluster(harness)
        try:
            yield cluster
        finally:
            cluster.close()

    @staticmethod
    def need(cluster: Cluster, feature: str) -> None:
        if feature not in cluster.harness.features:
            pytest.skip(f"the backend has no {feature}")

    # -- lifecycle ----------------------------------------------------------------------------
    def test_start_is_idempotent_and_agents_are_listed(self, cluster: Cluster) -> None:
        cluster.backend.start()
        agents = cluster.backend.agents()
        assert agents
        assert len({a.agent_id for a in agents}) == len(agents)
        assert all(a.hostname and a.total.cpus > 0 for a in agents)
        assert cluster.backend.is_healthy()

    def test_framework_id_only_while_running(self, cluster: Cluster) -> None:
        assert cluster.backend.framework_id()
        cluster.backend.shutdown(kill_tasks=True)
        assert cluster.backend.framework_id() is None
        assert not cluster.backend.is_healthy()
        assert cluster.collect() == []

    # -- offers -------------------------------------------------------------------------------
    def test_one_offer_per_agent_until_it_is_declined(self, cluster: Cluster) -> None:
        first = cluster.collect()
        assert {o.agent_id for o in first} == {a.agent_id for a in cluster.backend.agents()}
        assert len(first) == len(cluster.backend.agents())
        assert cluster.collect() == []  # outstanding offers are not offered again
        cluster.backend.decline_offers(first)
        again = cluster.collect()
        assert {o.agent_id for o in again} == {o.agent_id for o in first}
        assert {o.id for o in again}.isdisjoint({o.id for o in first})

    def test_offers_shrink_while_tasks_run_and_come_back(self, cluster: Cluster) -> None:
        agent = cluster.agent()
        full = cluster.offer(agent.agent_id)
        assert full.resources.is_equal(agent.total)
        release = cluster.harness.scratch / "release"
        need = Resources.of(cpus=1.0, mem=128.0, disk=0.0)
        cluster.backend.combine_offers([full], [make_task("holder", wait_for_file(release), need)])
        cluster.wait_for("holder", TaskStatus.RUNNING)
        during = cluster.offer(agent.agent_id)
        assert during.resources.is_equal(agent.total.subtract(need))
        release.touch()
        cluster.wait_for("holder", TaskStatus.FINISHED)
        after = cluster.offer(agent.agent_id)
        assert after.resources.is_equal(agent.total)

    def test_combining_a_spent_offer_loses_the_tasks(self, cluster: Cluster) -> None:
        offer = cluster.offer()
        cluster.backend.decline_offers([offer])
        cluster.backend.combine_offers([offer], [make_task("late", py("pass"))])
        assert cluster.statuses("late") == [TaskStatus.LOST]

    def test_tasks_needing_more_than_offered_fail(self, cluster: Cluster) -> None:
        offer = cluster.offer()
        huge = offer.resources.add(Resources.of(cpus=1.0))
        cluster.backend.combine_offers([offer], [make_task("greedy", py("pass"), huge)])
        update = cluster.wait_for("greedy", TaskStatus.FAILED)
        assert update.message
        assert cluster.offer().resources.is_equal(cluster.agent().total)

    def test_combine_without_tasks_spends_the_offer(self, cluster: Cluster) -> None:
        offer = cluster.offer()
        cluster.backend.combine_offers([offer], [])
        assert [o.agent_id for o in cluster.collect()].count(offer.agent_id) == 1

    # -- running tasks ------------------------------------------------------------------------
    def test_exit_zero_finishes_after_staging_and_running(self, cluster: Cluster) -> None:
        agent = cluster.agent()
        update = cluster.run(make_task("ok", py("pass")), agent.agent_id)
        assert update.status is TaskStatus.FINISHED
        assert update.exit_code == 0
        assert cluster.statuses("ok") == [
            TaskStatus.STAGING,
            TaskStatus.RUNNING,
            TaskStatus.FINISHED,
        ]
        updates = cluster.of("ok")
        assert {u.agent_id for u in updates} == {agent.agent_id}
        stamps = [u.timestamp for u in updates]
        assert stamps == sorted(stamps)
        assert all(s.year == cluster.harness.clock.now.year for s in stamps)  # the injected clock

    @pytest.mark.parametrize("code", [1, 7, 255])
    def test_non_zero_exit_fails_with_its_code(self, cluster: Cluster, code: int) -> None:
        self.need(cluster, COMMANDS)
        update = cluster.run(make_task(f"exit-{code}", py(f"raise SystemExit({code})")))
        assert update.status is TaskStatus.FAILED
        assert update.exit_code == code

    def test_argv_reaches_the_command_verbatim(self, cluster: Cluster) -> None:
        self.need(cluster, COMMANDS)
        args = ("two words", "$HOME", "*", "a;b", "")
        task = make_task("argv", py("import json, sys; print(json.dumps(sys.argv[1:]))", *args))
        assert cluster.run(task).status is TaskStatus.FINISHED
        assert cluster.log("argv").strip() == '["two words", "$HOME", "*", "a;b", ""]'

    def test_shell_task_runs_through_a_shell(self, cluster: Cluster) -> None:
        self.need(cluster, COMMANDS)
        self.need(cluster, SHELL)
        task = make_task("sh", ("echo $((6 * 7)) && echo second",), shell=True)
        assert cluster.run(task).status is TaskStatus.FINISHED
        assert cluster.log("sh").split() == ["42", "second"]

    def test_environment_holds_allocations_and_task_identity(
        self, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.need(cluster, COMMANDS)
        monkeypatch.setenv("LOADMASTER_TEST_SERVICE_VAR", "from-the-service")
        env = allocated_environment(SMALL) | {"JOB_SETTING": "x y"}
        code = (
            "import json, os; print(json.dumps({k: v for k, v in os.environ.items() if"
            " k.startswith(('ALLOCATED_', 'LOADMASTER_', 'JOB_'))}))"
        )
        task = make_task("env", py(code), environment=env)
        assert cluster.run(task).status is TaskStatus.FINISHED
        seen = json.loads(cluster.log("env"))
        assert seen["ALLOCATED_CPUS"] == "0.5"
        assert seen["ALLOCATED_MEM"] == "64.0"
        assert seen["JOB_SETTING"] == "x y"
        assert seen["LOADMASTER_TASK_ID"] == "env"
        assert seen["LOADMASTER_WORK_DIR"]
        assert seen["LOADMASTER_TEST_SERVICE_VAR"] == "from-the-service"

    def test_logs_are_readable_with_offset_and_length(self, cluster: Cluster) -> None:
        self.need(cluster, COMMANDS)
        code = "import sys; sys.stdout.write('0123456789'); sys.stderr.write('oops')"
        assert cluster.run(make_task("logs", py(code))).status is TaskStatus.FINISHED
        read = cluster.backend.read_log
        assert read("logs", "stdout") == b"0123456789"
        assert read("logs", "stdout", 3) == b"3456789"
        assert read("logs", "stdout", 3, 4) == b"3456"
        assert read("logs", "stdout", 20) == b""
        assert read("logs", "stderr") == b"oops"
        with pytest.raises(KeyError):
            read("no-such-task", "stdout")
        with pytest.raises(ValueError):
            read("logs", "stdlog")

    def test_logs_of_unknown_tasks_and_streams_are_refused(self, cluster: Cluster) -> None:
        assert cluster.run(make_task("quiet", py("pass"))).status is TaskStatus.FINISHED
        with pytest.raises(KeyError):
            cluster.backend.read_log("no-such-task", "stdout")
        with pytest.raises(ValueError):
            cluster.backend.read_log("quiet", "stdlog")

    def test_command_not_found_fails_with_a_message(self, cluster: Cluster) -> None:
        self.need(cluster, COMMANDS)
        task = make_task("missing", ("loadmaster-no-such-command-anywhere", "arg"))
        update = cluster.run(task)
        assert update.status is TaskStatus.FAILED
        assert update.message and "loadmaster-no-such-command-anywhere" in update.message
        assert TaskStatus.RUNNING not in cluster.statuses("missing")

    # -- killing ------------------------------------------------------------------------------
    def test_kill_ends_the_whole_process_group(self, cluster: Cluster) -> None:
        self.need(cluster, PROCESS_GROUPS)
        pid_file = cluster.harness.scratch / "child.pid"
        code = (
            "import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            "open(sys.argv[1], 'w').write(str(child.pid))\n"
            "time.sleep(60)\n"
        )
        agent = cluster.agent()
        cluster.launch(make_task("parent", py(code, str(pid_file))), agent_id=agent.agent_id)
        cluster.wait_for("parent", TaskStatus.RUNNING)
        wait_until(lambda: pid_file.exists() and pid_file.read_text() != "")
        child = int(pid_file.read_text())
        assert pid_alive(child)
        cluster.backend.kill_task("parent", agent.agent_id)
        update = cluster.wait_for("parent", TaskStatus.KILLED, TaskStatus.FAILED)
        assert update.status is TaskStatus.KILLED
        wait_until(lambda: not pid_alive(child))

    def test_kill_escalates_to_sigkill_after_the_grace_period(self, cluster: Cluster) -> None:
        self.need(cluster, PROCESS_GROUPS)
        ready = cluster.harness.scratch / "ignoring"
        code = (
            "import signal, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "open(sys.argv[1], 'w').close()\n"
            "time.sleep(60)\n"
        )
        agent = cluster.agent()
        cluster.launch(make_task("stubborn", py(code, str(ready))), agent_id=agent.agent_id)
        wait_until(ready.exists)
        cluster.backend.kill_task("stubborn", agent.agent_id)
        update = cluster.wait_for("stubborn", *_ENDS)
        assert update.status is TaskStatus.KILLED

    def test_kill_of_an_unknown_task_is_answered_lost(self, cluster: Cluster) -> None:
        cluster.backend.kill_task("never-launched", cluster.agent().agent_id)
        assert cluster.wait_for("never-launched", *_ENDS).status is TaskStatus.LOST

    def test_kill_after_the_end_keeps_the_end(self, cluster: Cluster) -> None:
        agent = cluster.agent()
        assert cluster.run(make_task("done", py("pass")), agent.agent_id).exit_code == 0
        cluster.backend.kill_task("done", agent.agent_id)
        assert cluster.wait_for("done", *_ENDS, since=3).status is TaskStatus.FINISHED

    # -- shutdown -----------------------------------------------------------------------------
    def test_shutdown_with_kill_ends_running_tasks(self, cluster: Cluster) -> None:
        pid_file = cluster.harness.scratch / "victim.pid"
        code = (
            "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"
        )
        cluster.launch(make_task("victim", py(code, str(pid_file))))
        cluster.wait_for("victim", TaskStatus.RUNNING)
        if COMMANDS in cluster.harness.features:
            wait_until(lambda: pid_file.exists() and pid_file.read_text() != "")
        cluster.backend.shutdown(kill_tasks=True)
        assert cluster.wait_for("victim", *_ENDS).status is TaskStatus.KILLED
        if PROCESS_GROUPS in cluster.harness.features:
            wait_until(lambda: not pid_alive(int(pid_file.read_text())))

    def test_shutdown_without_kill_leaves_tasks_running(self, cluster: Cluster) -> None:
        self.need(cluster, COMMANDS)
        release = cluster.harness.scratch / "release"
        done = cluster.harness.scratch / "done"
        task = make_task("survivor", wait_for_file(release, f"open({str(done)!r}, 'w').close()"))
        cluster.launch(task)
        cluster.wait_for("survivor", TaskStatus.RUNNING)
        cluster.backend.shutdown(kill_tasks=False)
        release.touch()
        wait_until(done.exists)

    # -- restart and reconciliation -----------------------------------------------------------
    def test_reconcile_after_restart(self, cluster: Cluster) -> None:
        self.need(cluster, RESTART)
        agent = cluster.agent()
        release = cluster.harness.scratch / "release"
        running = make_task("long", wait_for_file(release))
        cluster.launch(
            running, make_task("short", py("raise SystemExit(4)")), agent_id=agent.agent_id
        )
        cluster.wait_for("long", TaskStatus.RUNNING)
        cluster.wait_for("short", TaskStatus.FAILED)
        old = cluster.updates[:]
        new_backend = cluster.restart()
        assert agent.agent_id not in {a.agent_id for a in new_backend.agents()}
        assert agent.hostname in {a.hostname for a in new_backend.agents()}
        mark = {t: len([u for u in old if u.task_id == t]) for t in ("long", "short")}
        new_backend.reconcile(
            [("long", agent.agent_id), ("short", agent.agent_id), ("ghost", agent.agent_id)]
        )
        again = cluster.wait_for("long", *_ENDS, TaskStatus.RUNNING, since=mark["long"])
        assert again.status is TaskStatus.RUNNING
        assert again.agent_id == agent.agent_id
        short = cluster.wait_for("short", *_ENDS, since=mark["short"])
        assert (short.status, short.exit_code) == (TaskStatus.FAILED, 4)
        assert cluster.wait_for("ghost", *_ENDS).status is TaskStatus.LOST
        release.touch()
        ended = cluster.wait_for("long", *_ENDS, since=mark["long"] + 1)
        assert (ended.status, ended.exit_code) == (TaskStatus.FINISHED, 0)
        assert ended.agent_id == agent.agent_id

    def test_restarted_backend_does_not_offer_what_old_tasks_hold(self, cluster: Cluster) -> None:
        self.need(cluster, RESTART)
        release = cluster.harness.scratch / "release"
        need = Resources.of(cpus=1.0, mem=100.0, disk=0.0)
        cluster.launch(make_task("holder", wait_for_file(release), need))
        cluster.wait_for("holder", TaskStatus.RUNNING)
        cluster.restart()
        agent = cluster.agent()
        assert cluster.offer(agent.agent_id).resources.is_equal(agent.total.subtract(need))
        release.touch()
        wait_until(lambda: cluster.offer(agent.agent_id).resources.is_equal(agent.total))

    def test_task_of_an_earlier_backend_can_be_killed(self, cluster: Cluster) -> None:
        self.need(cluster, RESTART)
        agent = cluster.agent()
        cluster.launch(
            make_task("orphan", py("import time; time.sleep(60)")), agent_id=agent.agent_id
        )
        cluster.wait_for("orphan", TaskStatus.RUNNING)
        seen = len(cluster.of("orphan"))
        cluster.restart().kill_task("orphan", agent.agent_id)
        assert cluster.wait_for("orphan", *_ENDS, since=seen).status is TaskStatus.KILLED

    # -- agent failure ------------------------------------------------------------------------
    def test_stopped_agent_loses_its_tasks_and_disappears(self, cluster: Cluster) -> None:
        self.need(cluster, AGENT_CONTROL)
        agent = cluster.agent()
        pid_file = cluster.harness.scratch / "doomed.pid"
        code = (
            "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"
        )
        cluster.launch(make_task("doomed", py(code, str(pid_file))), agent_id=agent.agent_id)
        cluster.wait_for("doomed", TaskStatus.RUNNING)
        if COMMANDS in cluster.harness.features:
            wait_until(lambda: pid_file.exists() and pid_file.read_text() != "")
        stale = cluster.offer(agent.agent_id)
        cluster.harness.stop_agent(cluster.backend, agent.hostname)
        lost = cluster.wait_for("doomed", *_ENDS)
        assert (lost.status, lost.agent_id) == (TaskStatus.LOST, agent.agent_id)
        assert agent.agent_id not in {a.agent_id for a in cluster.backend.agents()}
        assert agent.agent_id not in {o.agent_id for o in cluster.collect()}
        cluster.backend.combine_offers([stale], [make_task("too-late", py("pass"))])
        assert cluster.wait_for("too-late", *_ENDS).status is TaskStatus.LOST
        if PROCESS_GROUPS in cluster.harness.features:
            wait_until(lambda: not pid_alive(int(pid_file.read_text())))

    def test_restarted_agent_has_a_new_id_and_the_same_hostname(self, cluster: Cluster) -> None:
        self.need(cluster, AGENT_CONTROL)
        before = cluster.agent()
        cluster.harness.stop_agent(cluster.backend, before.hostname)
        cluster.harness.start_agent(cluster.backend, before.hostname)
        after = cluster.agent(before.hostname)
        assert after.agent_id != before.agent_id
        assert after.total == before.total
        offer = cluster.offer(after.agent_id)
        assert offer.resources.is_equal(after.total)
        assert (
            cluster.run(make_task("reborn", py("pass")), after.agent_id).agent_id == after.agent_id
        )

    # -- concurrency --------------------------------------------------------------------------
    def test_collect_updates_hands_out_each_update_once(self, cluster: Cluster) -> None:
        ids = [f"many-{n}" for n in range(6)]
        tiny = Resources.of(cpus=0.1, mem=1.0, disk=0.0)
        cluster.launch(*(make_task(i, py("pass"), tiny) for i in ids))
        got: list[TaskStatusUpdate] = []
        lock = threading.Lock()
        stop = threading.Event()

        def collect() -> None:
            while not stop.is_set():
                new = cluster.backend.collect_updates()
                with lock:
                    got.extend(new)

        threads = [threading.Thread(target=collect) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            wait_until(lambda: sum(u.status is TaskStatus.FINISHED for u in list(got)) == len(ids))
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        for task_id in ids:
            assert [u.status for u in got if u.task_id == task_id] == [
                TaskStatus.STAGING,
                TaskStatus.RUNNING,
                TaskStatus.FINISHED,
            ]
