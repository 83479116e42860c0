"""Keeping secrets out of text: configured key values and credential-shaped strings are replaced.

Used wherever text that a library produced can end up in front of people: error messages that
are stored, and log records (litellm, openai, instructor under ragas) that quote a failed request
with its Authorization header.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence

from shadowtap.core.config import ShadowtapConfig

# Credential shapes that exception messages from HTTP clients are known to echo back.
SECRET_SHAPES = re.compile(
    r"(?i)((?:api[_-]?key|token|secret|password|authorization)[\"']?\s*[:=]\s*[\"']?(?:bearer\s+|basic\s+)?)"
    r"[^\s'\",}&]+"
    r"|(bearer\s+)[^\s'\"]+"
    r"|\b(?:sk|rk|pk|sess)-[A-Za-z0-9_\-]{8,}")


def scrub_secrets(message: str, secrets: Sequence[str] = ()) -> str:
    """The message with known secret values and credential-shaped strings replaced."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "[secret]")
    return SECRET_SHAPES.sub(lambda m: (m.group(1) or m.group(2) or "") + "[secret]", message)


def configured_secrets(config: ShadowtapConfig) -> list[str]:
    """The values of every environment variable the config names as holding a key or token."""
    names = [config.primary.api_key_env, config.judge.api_key_env, config.shadow.primary_twin_key_env,
             config.admin.token_env, *(candidate.api_key_env for candidate in config.candidates)]
    values = [os.environ.get(name, "") for name in names if name]
    if config.server.client_keys_env:
        values += os.environ.get(config.server.client_keys_env, "").split(",")
    # Longest first, so a key that contains another is replaced whole.
    return sorted({value.strip() for value in values if len(value.strip()) >= 4}, key=len, reverse=True)


class ScrubSecrets(logging.Filter):
    """Rewrites each record's message (and traceback text) with the secrets replaced."""

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        super().__init__()
        self.secrets = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub_secrets(message, self.secrets)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub_secrets(record.exc_text, self.secrets)
        return True
