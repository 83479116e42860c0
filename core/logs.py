"""Structured logging: one JSON object per line (or plain text), never a secret in a record.

Log records carry only what the code puts in them; the proxy never logs headers or bodies.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson

from shadowtap.core.secrets import ScrubSecrets

_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class _DropDeliberateTruncation(logging.Filter):
    """uvicorn reports an unfinished response as an error; for a primary that broke off
    mid-stream that is what the proxy does on purpose, and it logs its own warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing response" not in record.getMessage()


def configure_logging(level: str = "info", fmt: str = "json", file: str = "", secrets: Sequence[str] = ()) -> None:
    """The proxy's and the shadow worker's logging; `secrets` (key values) never appear in a record,
    nor do credential-shaped strings that a library quotes from a failed request."""
    handler: logging.Handler = (logging.FileHandler(file, encoding="utf-8") if file
                                else logging.StreamHandler(sys.stderr))
    handler.addFilter(ScrubSecrets(secrets))
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.error").addFilter(_DropDeliberateTruncation())


def guard_library_logs(secrets: Sequence[str] = ()) -> None:
    """For the commands that call models (eval, replay, report, demo): libraries such as instructor
    log a failed call with the provider's error text, which can quote the request's Authorization
    header. Warnings still reach stderr, with secrets replaced."""
    root = logging.getLogger()
    if not root.handlers:
        stderr = logging.StreamHandler(sys.stderr)
        stderr.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        stderr.setLevel(logging.WARNING)
        root.addHandler(stderr)
    for handler in root.handlers:
        if not any(isinstance(existing, ScrubSecrets) for existing in handler.filters):
            handler.addFilter(ScrubSecrets(secrets))
