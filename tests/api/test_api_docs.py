"""docs/api.md carries the endpoint reference generated from the OpenAPI document; this
fails when it is stale (rewrite it with `python -m loadmaster.api.reference docs/api.md`)."""

from __future__ import annotations

from pathlib import Path

from loadmaster.api.reference import (
    BEGIN,
    END,
    openapi_document,
    render_reference,
    updated,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_reference_is_current() -> None:
    text = DOC.read_text()
    assert BEGIN in text and END in text
    assert updated(text, render_reference(openapi_document())) == text


def test_every_route_is_versioned_or_operational() -> None:
    paths = openapi_document()["paths"]
    outside = {p for p in paths if not p.startswith("/api/v1/")}
    assert outside == {"/healthz", "/readyz", "/metrics"}
