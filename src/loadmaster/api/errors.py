"""Every 4xx names the field and the problem: `{"detail": [{"field": …, "problem": …}]}`.

The store reports invalid input as `ValueError("field: problem")`; it is turned into 400 here
(404 when the problem is an unknown id), and since each store method is one transaction, a
refused request has changed nothing.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_UNKNOWN_ID = re.compile(r"\bno [a-z ]+ with id\b")


class ApiError(Exception):
    def __init__(self, status: int, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.status = status
        self.field = field
        self.problem = problem


def not_found(field: str, what: str, ident: object) -> ApiError:
    return ApiError(404, field, f"no {what} with id {ident}")


def from_store(exc: ValueError) -> ApiError:
    """`"job_id: no job with id 5"` → 404; any other store refusal → 400."""
    field, _, problem = str(exc).partition(": ")
    if not problem:
        field, problem = "body", str(exc)
    return ApiError(404 if _UNKNOWN_ID.search(problem) else 400, field, problem)


def _problems(detail: Any) -> list[dict[str, str]]:
    if isinstance(detail, list):
        return detail
    return [{"field": "request", "problem": str(detail)}]


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)] or ["body"]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            {"detail": [{"field": exc.field, "problem": exc.problem}]}, status_code=exc.status
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "field": _location(tuple(e.get("loc", ()))),
                "problem": str(e.get("msg", "invalid")).removeprefix("Value error, "),
            }
            for e in exc.errors()
        ]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": _problems(exc.detail)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )


class BodyLimit:
    """Refuse request bodies over `max_bytes` with 413 before they are read whole, whether
    the client announced the length or streams the body."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(
            {"detail": [{"field": "body", "problem": f"larger than {self.max_bytes} bytes"}]},
            status_code=413,
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": response.raw_headers,
            }
        )
        await send({"type": "http.response.body", "body": response.body})


class _TooLarge(Exception):
    pass
