"""Keeping secrets out of text: configured key values and credential-shaped strings are replaced.

Used wherever text that a library produced can end up in front of people: error messages that
are stored, and log records (litellm, openai, instructor under ragas) that quote a failed request
with its Authorization header. Also the one rule for names: which header or query parameter names
suggest a credential, so their values are never stored or logged.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from urllib.parse import unquote_plus

from shadowtap.core.config import ShadowtapConfig

# What a credential is replaced with, wherever it is: logs, stored error messages, stored queries.
SECRET_PLACEHOLDER = "[secret]"

# Credential shapes that exception messages from HTTP clients are known to echo back.
SECRET_SHAPES = re.compile(
    r"(?i)((?:api[_-]?key|token|secret|password|authorization)[\"']?\s*[:=]\s*[\"']?(?:bearer\s+|basic\s+)?)"
    r"[^\s'\",}&]+"
    r"|(bearer\s+)[^\s'\"]+"
    r"|\b(?:sk|rk|pk|sess)-[A-Za-z0-9_\-]{8,}")


# A header or query parameter whose name holds one of these is taken for a credential:
# `x-goog-api-key`, `x-client-credential`, `access_token`, `X-Amz-Signature`, `client_secret`...
CREDENTIAL_MARKERS = ("key", "token", "secret", "password", "passwd", "auth", "credential", "session",
                      "cookie", "signature")
# Too short to look for inside a word ("design", "passage"), so only as a whole word of the name:
# `sig` (Azure SAS, signed URLs), `pwd`, `pass`, `jwt`.
CREDENTIAL_WORDS = frozenset({"sig", "pwd", "pass", "jwt"})
# Words that hold a marker but count model tokens, not credentials: `x-ratelimit-remaining-tokens`.
_COUNT_WORDS = frozenset({"tokens"})
_WORD_BREAKS = re.compile(r"[^a-z0-9]+")


def name_suggests_credential(name: str) -> bool:
    """True when a header or query parameter name suggests that its value is a credential."""
    for word in _WORD_BREAKS.split(name.lower()):
        if word in _COUNT_WORDS:
            continue
        if word in CREDENTIAL_WORDS or any(marker in word for marker in CREDENTIAL_MARKERS):
            return True
    return False


def redact_query(query: str) -> str:
    """The query string with the value of each parameter whose name suggests a credential replaced
    (`key=AIza...` becomes `key=[secret]`); everything else is kept exactly as sent."""
    if not query:
        return query
    parts = query.split("&")
    changed = False
    for index, part in enumerate(parts):
        name, equals, value = part.partition("=")
        if equals and value and name_suggests_credential(unquote_plus(name)):
            parts[index] = f"{name}={SECRET_PLACEHOLDER}"
            changed = True
    return "&".join(parts) if changed else query


def scrub_secrets(message: str, secrets: Sequence[str] = ()) -> str:
    """The message with known secret values and credential-shaped strings replaced."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, SECRET_PLACEHOLDER)
    return SECRET_SHAPES.sub(lambda m: (m.group(1) or m.group(2) or "") + SECRET_PLACEHOLDER, message)


def configured_secrets(config: ShadowtapConfig) -> list[str]:
    """The values of every environment variable the config names as holding a key or token."""
    names = [config.primary.api_key_env, config.judge.api_key_env, config.shadow.primary_twin_key_env,
             config.admin.token_env, config.store.key_hash_salt_env,
             *(candidate.api_key_env for candidate in config.candidates)]
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
