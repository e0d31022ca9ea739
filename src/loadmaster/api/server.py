"""Host the API beside the scheduling loop: uvicorn in its own thread, the loop in another.

`serve` refuses to listen beyond loopback without a token: an open mutating API on a network
would let anyone cancel jobs or pause the cluster.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time

import uvicorn

from loadmaster.api.app import create_app
from loadmaster.api.context import ApiContext
from loadmaster.api.monitor import ServiceMonitor
from loadmaster.service.config import ApiConfig
from loadmaster.service.scheduler import SchedulerService


class ApiRefused(ValueError):
    """The API settings are unsafe or unusable; `serve` exits 2 with this message."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_settings(settings: ApiConfig) -> None:
    if not settings.token and not is_loopback(settings.host):
        raise ApiRefused(
            f"api.host: refusing to listen on {settings.host!r} without api.token "
            "(set api.token or LOADMASTER_API_TOKEN, or listen on 127.0.0.1)"
        )


class ApiServer:
    def __init__(
        self, service: SchedulerService, monitor: ServiceMonitor, settings: ApiConfig
    ) -> None:
        check_settings(settings)
        self.settings = settings
        app = create_app(ApiContext(service, monitor, settings))
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="api", daemon=True)

    def start(self, timeout: float = 10.0) -> str:
        """Start listening; returns the URL. Raises ApiRefused when the port cannot be bound."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ApiRefused(
                    f"api: could not listen on {self.settings.host}:{self.settings.port}"
                )
            time.sleep(0.02)
        return self.url

    @property
    def url(self) -> str:
        servers = getattr(self._server, "servers", [])
        port = self.settings.port
        for server in servers:
            for sock in server.sockets:
                port = sock.getsockname()[1]
        host = self.settings.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        logging.getLogger("loadmaster.api").debug("api stopped")
