"""The CLI's side of the HTTP API: one small client, and the failure path every command
shares (exit 1 with the server's field and problem, or that the server could not be reached).
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import typer
from rich.console import Console

DEFAULT_PORT = 8750
SERVER_ENV = "LOADMASTER_SERVER"
TOKEN_ENV = "LOADMASTER_TOKEN"
API = "/api/v1"


def default_server() -> str:
    return os.environ.get(SERVER_ENV) or f"http://127.0.0.1:{DEFAULT_PORT}"


def server_failure(message: str) -> typer.Exit:
    """A failure the server reported (or no server): the message on stderr, exit 1."""
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


def _problems(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):
        return "; ".join(
            f"{d.get('field')}: {d.get('problem')}" if isinstance(d, dict) else str(d)
            for d in detail
        )
    return str(detail or body)


class ApiClient:
    def __init__(self, server: str | None, timeout: float = 30.0) -> None:
        self.server = (server or default_server()).rstrip("/")
        token = os.environ.get(TOKEN_ENV)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **options)
        except httpx.HTTPError as exc:
            raise server_failure(f"cannot reach the server at {self.server}: {exc}") from None
        if response.status_code >= 400:
            raise server_failure(f"{response.status_code}: {_problems(response)}")
        return response

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", f"{API}{path}", params=clean).json()

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", f"{API}{path}", json=body).json()

    def text(self, path: str, **params: Any) -> str:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", f"{API}{path}", params=clean).text
