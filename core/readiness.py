"""Checks of a valid config against the world it runs in: the primary and the judge can be reached,
every `*_env` variable is set, and litellm knows a provider for each model string.

`shadowtap check` runs them all and prints them; `shadowtap serve` runs the same checks at
start-up, off the request path, and logs each problem as a warning. litellm is passed in, never
imported here: the proxy process must not load it, so serve's model-string check runs in the
shadow worker, which has litellm loaded anyway.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from shadowtap.core.config import ShadowtapConfig

OK, PROBLEM, NOTE = "ok", "problem", "note"
PROBE_TIMEOUT_S = 5.0
_ADMIN_TOKEN_KEY = "[admin] token_env"


@dataclass(frozen=True)
class CheckResult:
    """One check: what was checked (the config key), ok / problem / note, and what was found."""

    key: str
    status: str
    detail: str

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def environment_checks(config: ShadowtapConfig) -> list[CheckResult]:
    """Every `*_env` key that names a variable: is that variable set (and not empty)? Values are
    never read into a result, only whether they are there."""
    results = []
    for key, name in _env_keys(config):
        if os.environ.get(name):
            results.append(CheckResult(key, OK, f"{name} is set"))
        elif key == _ADMIN_TOKEN_KEY:
            # Unset is how the admin API is turned off, so it is worth saying, not a fault.
            results.append(CheckResult(key, NOTE, f"{name} is not set: the admin API (POST /shadowtap/feedback) "
                                                  "is off"))
        else:
            results.append(CheckResult(key, PROBLEM, f"{name} is not set (or empty): calls that need it will "
                                                     "fail or go without a key"))
    return results


def _env_keys(config: ShadowtapConfig) -> Iterator[tuple[str, str]]:
    for section in dataclasses.fields(config):
        value = getattr(config, section.name)
        parts = value if isinstance(value, list) else [value]
        for part in parts:
            if not dataclasses.is_dataclass(part):
                continue
            prefix = (f"[[{section.name}]] {getattr(part, 'name', '')!r}" if isinstance(value, list)
                      else f"[{section.name}]")
            if getattr(part, "enabled", True) is False:
                continue  # a disabled candidate makes no calls
            for field in dataclasses.fields(part):
                name = getattr(part, field.name)
                if field.name.endswith("_env") and isinstance(name, str) and name:
                    yield f"{prefix} {field.name}", name


def reachability_checks(config: ShadowtapConfig, timeout_s: float = PROBE_TIMEOUT_S, *,
                        judge: bool = True, candidates: bool = True) -> list[CheckResult]:
    """Does the primary's host accept a connection (and a TLS handshake, for https)? And the
    judge's and each candidate's api_base, when asked. Nothing is sent: no HTTP request, so no key
    and no stray line in the primary's logs; a wrong host, port or certificate shows all the same."""
    targets = [("[primary] base_url", config.primary.base_url)]
    if judge and config.judge.model and config.judge.api_base:
        targets.append(("[judge] api_base", config.judge.api_base))
    if candidates:
        targets += [(f"[[candidates]] {c.name!r} api_base", c.api_base)
                    for c in config.candidates if c.enabled and c.api_base]
    results = [probe_url(key, url, timeout_s) for key, url in targets]
    if judge and config.judge.model and not config.judge.api_base:
        results.append(CheckResult("[judge] api_base", NOTE, "not set: the judge uses its provider's own "
                                                             "endpoint, which is not probed"))
    return results


def probe_url(key: str, url: str, timeout_s: float = PROBE_TIMEOUT_S) -> CheckResult:
    """Connect to the URL's host and port (and complete a TLS handshake for https), then close."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    secure = parts.scheme == "https"
    try:
        port = parts.port or (443 if secure else 80)
        with socket.create_connection((host, port), timeout=timeout_s) as connection:
            if secure:
                ssl.create_default_context().wrap_socket(connection, server_hostname=host).close()
    except (OSError, ValueError) as exc:  # refused, unknown host, timeout, certificate; ValueError: bad port
        reason = str(exc) or type(exc).__name__
        return CheckResult(key, PROBLEM, f"{url} cannot be reached: {reason}")
    return CheckResult(key, OK, f"{url}: {host}:{port} accepts connections" + (" over TLS" if secure else ""))


def model_checks(config: ShadowtapConfig, litellm, *, judge: bool = True) -> list[CheckResult]:
    """Does litellm know a provider for each enabled candidate's model string (and the judge's)?
    `litellm` is the imported module; a typo such as "opnai/gpt-4o-mini" fails every call with
    "LLM Provider NOT provided", and is caught here instead."""
    targets = [(f"[[candidates]] {c.name!r} model", c.model, c.api_base)
               for c in config.candidates if c.enabled]
    if judge and config.judge.model:
        targets.append(("[judge] model", config.judge.model, config.judge.api_base))
    return [model_check(litellm, key, model, api_base) for key, model, api_base in targets]


def model_check(litellm, key: str, model: str, api_base: str = "") -> CheckResult:
    try:
        _, provider, _, _ = litellm.get_llm_provider(model=model, api_base=api_base or None)
    except Exception as exc:  # litellm raises its BadRequestError; any failure means the same here
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        prefix = model.split("/", 1)[0]
        return CheckResult(key, PROBLEM, f"{model!r}: litellm knows no provider {prefix!r}, so every call would "
                                         f"fail ({first_line})")
    return CheckResult(key, OK, f"{model!r}: provider {provider!r}")


def problems(results: list[CheckResult]) -> list[CheckResult]:
    return [result for result in results if result.status == PROBLEM]


def log_problems(results: list[CheckResult], logger: logging.Logger) -> None:
    """One warning per problem: what `shadowtap serve` does with the checks at start-up."""
    for result in problems(results):
        logger.warning("start-up check: %s: %s", result.key, result.detail,
                       extra={"check": result.key, "detail": result.detail})
