"""`loadmaster serve`: the scheduling loop as a long-running process.

The loop runs one service step every `cycle_seconds` (1 s by default). SIGINT and SIGTERM stop
it cleanly: no new launches, then running tasks are left or killed as configured. While the
store cannot be reached the daemon keeps trying with a capped backoff and reports itself
unhealthy in its status file (`<data_dir>/status.json`), which is rewritten every few seconds.

The HTTP API (`[api]`) runs in its own thread beside the loop; both share the service, whose
lock `step` holds for a turn. An API that cannot bind its port is logged and left out: the
loop keeps scheduling, since stopping it would strand every queued job.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType

from loadmaster.api.monitor import ServiceMonitor
from loadmaster.api.server import ApiRefused, ApiServer
from loadmaster.scheduling.ports import StoreUnavailable
from loadmaster.service.backends import build_backend
from loadmaster.service.config import Config
from loadmaster.service.logs import configure_logging
from loadmaster.service.scheduler import SchedulerService, utc_now
from loadmaster.store.sql import SqlStore

STATUS_EVERY_SECONDS = 2.0
MAX_STORE_BACKOFF_SECONDS = 30.0


def write_status(path: Path, service: SchedulerService | None, error: str | None) -> None:
    """Atomically replace the status file (write a temporary file, then rename)."""
    status = service.status if service is not None else None
    doc = {
        "time": utc_now().isoformat(),
        "pid": os.getpid(),
        "healthy": bool(status and status.healthy and error is None),
        "error": error or (status.last_error if status else None),
        "cycles": status.cycles if status else 0,
        "last_cycle": status.last_cycle.isoformat() if status and status.last_cycle else None,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(doc))
    temporary.replace(path)


def _open_store(
    config: Config, stop: threading.Event, log: logging.Logger, status: Path
) -> SqlStore | None:
    delay = 1.0
    while not stop.is_set():
        try:
            return SqlStore.open(config.store_url(), schema=config.store.pg_schema)
        except StoreUnavailable as exc:
            log.error(
                "store unavailable; retrying",
                extra={"fields": {"in_seconds": delay, "error": str(exc)}},
            )
            write_status(status, None, f"store unavailable: {exc}")
            stop.wait(delay)
            delay = min(delay * 2, MAX_STORE_BACKOFF_SECONDS)
    return None


def _install_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def serve_forever(config: Config, stop: threading.Event) -> int:
    log = configure_logging(config.logging.level, config.logging.format)
    status_path = config.data_path() / "status.json"
    config.data_path().mkdir(parents=True, exist_ok=True)
    if threading.current_thread() is threading.main_thread():
        _install_signals(stop)
    store = _open_store(config, stop, log, status_path)
    if store is None:
        return 0
    service: SchedulerService | None = None
    parts = build_backend(
        config, lambda e: service.cluster_id_of(e) if service else None, store.config
    )
    service = SchedulerService(
        config, store, parts.backend, node_task_factory=parts.node_task_factory, logger=log
    )
    monitor = ServiceMonitor(service, config.api.status_seconds)
    api: ApiServer | None = None
    try:
        service.start()
        api = _start_api(service, monitor, config, log)
        log.info(
            "scheduler started",
            extra={
                "fields": {
                    "store": store.dialect,
                    "backend": config.backend.kind,
                    "api": api.url if api is not None else None,
                }
            },
        )
        _loop(monitor, config, stop, status_path)
    finally:
        log.info(
            "scheduler stopping", extra={"fields": {"on_shutdown": config.scheduler.on_shutdown}}
        )
        if api is not None:
            api.stop()
        service.shutdown()
        write_status(status_path, service, "stopped")
        store.close()
    return 0


def _start_api(
    service: SchedulerService, monitor: ServiceMonitor, config: Config, log: logging.Logger
) -> ApiServer | None:
    if not config.api.enabled:
        return None
    api = ApiServer(service, monitor, config.api)
    try:
        api.start()
    except ApiRefused as exc:
        log.error("api not started", extra={"fields": {"error": str(exc)}})
        return None
    return api


def _loop(
    monitor: ServiceMonitor, config: Config, stop: threading.Event, status_path: Path
) -> None:
    last_status = 0.0
    while not stop.is_set():
        turn = time.monotonic()
        monitor.step()
        if turn - last_status >= STATUS_EVERY_SECONDS:
            last_status = turn
            write_status(status_path, monitor.service, None)
        stop.wait(max(config.scheduler.cycle_seconds - (time.monotonic() - turn), 0.0))
