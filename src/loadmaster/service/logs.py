"""Structured logging for the daemon: one line per event, text or JSON, with levels.

Fields given through `extra={"fields": {...}}` are printed as `key=value` pairs (text) or as
JSON members, so a cycle summary can be grepped and parsed alike.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

LOGGER_NAME = "loadmaster"


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        fields = getattr(record, "fields", None) or {}
        extra = "".join(f" {k}={v}" for k, v in fields.items())
        return f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}{extra}"


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def configure_logging(level: str = "INFO", fmt: str = "text") -> logging.Logger:
    """Configure the `loadmaster` logger (only it: libraries keep their own settings)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    logger.handlers[:] = [handler]
    logger.propagate = False
    return logger
