"""Structured logging: one JSON object per line (or plain text), never a secret in a record.

Log records carry only what the code puts in them; the proxy never logs headers or bodies, and no
library it calls logs below INFO, since at DEBUG they quote whole requests and responses.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson

from shadowtap.core.secrets import ScrubSecrets, redact_query

# Only these loggers' DEBUG records are written. At DEBUG, libraries quote whole requests and
# responses: openai's "Request options" holds the candidate's request body, httpcore logs response
# headers, litellm a curl command with the body. With [server] log_level = "debug" they stay at INFO.
_OWN_LOGGERS = ("shadowtap",)
# Raised to INFO up front, so their DEBUG records are never even built (the handler's filter
# below drops those of any other library, and of these if one lowers its level again, as
# OPENAI_LOG=debug does at import). litellm's loggers matter most: litellm writes them through its
# own handler, straight to stdout, past that filter.
_LIBRARY_LOGGERS = ("openai", "httpx", "httpcore", "litellm", "LiteLLM", "LiteLLM Router", "LiteLLM Proxy",
                    "aiohttp", "asyncio", "instructor", "ragas", "urllib3", "hpack", "multipart")

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


class _OnlyOwnDebugRecords(logging.Filter):
    """Drops records below INFO unless shadowtap wrote them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO or record.name.partition(".")[0] in _OWN_LOGGERS


class _RedactQueryCredentials(logging.Filter):
    """uvicorn's access line quotes the request target with its query string; a credential passed
    as a query parameter (`?key=`, as Google's APIs take it) is replaced before any handler sees it.
    One `in` test per line for a request without a query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(arg, str) and "?" in arg for arg in args):
            record.args = tuple(_target_redacted(arg) if isinstance(arg, str) else arg for arg in args)
        return True


def _target_redacted(text: str) -> str:
    path, question, query = text.partition("?")
    return f"{path}?{redact_query(query)}" if question else text


def hold_library_loggers(level: str) -> None:
    """Library loggers at INFO or above, whatever the configured level, and writing only through
    ours: call again after importing a library that sets its own levels or handlers (litellm)."""
    floor = max(logging.INFO, logging.getLevelNamesMapping()[level.upper()])
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < floor:
            logger.setLevel(floor)
    if logging.getLogger().handlers:
        _route_through_root(_LITELLM_LOGGERS)


# litellm gives these loggers a stderr handler of its own at import: a record written there skips
# the root handler's filters (secrets scrubbed, JSON lines), so those handlers are taken away and
# the records reach the root handler only.
_LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")


def _route_through_root(names: Sequence[str]) -> None:
    for name in names:
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True


def configure_logging(level: str = "info", fmt: str = "json", file: str = "", secrets: Sequence[str] = ()) -> None:
    """The proxy's and the shadow worker's logging; `secrets` (key values) never appear in a record,
    nor do credential-shaped strings that a library quotes from a failed request."""
    handler: logging.Handler = (logging.FileHandler(file, encoding="utf-8") if file
                                else logging.StreamHandler(sys.stderr))
    handler.addFilter(_OnlyOwnDebugRecords())
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
    errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(existing, _DropDeliberateTruncation) for existing in errors.filters):
        errors.addFilter(_DropDeliberateTruncation())
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(existing, _RedactQueryCredentials) for existing in access.filters):
        access.addFilter(_RedactQueryCredentials())
    hold_library_loggers(level)


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
