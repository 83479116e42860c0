"""litellm warmed up in the shadow worker before it takes a job: every module a candidate call
needs is imported then, one call at a time, and nothing is sent anywhere.

litellm imports most of itself lazily, on first use, and runs part of each call in a thread pool.
Several first calls at once then import the same modules from several threads, and Python hands
one thread a module another is still importing: "partially initialized module 'httpx2' has no
attribute 'Timeout'" failed early candidate calls in 2 of 6 fresh starts, and counted against the
candidate's error rate and breaker. So each candidate's own call path (its provider, its API,
streaming and not) runs once here against a loopback port that refuses connections, and the worker
reports ready only when no module is still being imported. Measured: after a mocked OpenAI call
alone, the first burst to hosted_vllm and anthropic candidates still imported 28 modules from its
threads; after this warm-up it imports none (tests/shadow/test_shadow_startup.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import sys
import time
from collections.abc import Iterable, Iterator

from shadowtap.proxy.dialects import DIALECTS, Dialect, dialect_named
from shadowtap.proxy.shadow.calls import CallTarget, call_candidate
from shadowtap.proxy.shadow.planning import TWIN

log = logging.getLogger("shadowtap.shadow")

WARM_UP_TIMEOUT_S = 5.0
IMPORTS_SETTLE_TIMEOUT_S = 10.0
# Providers whose calls go to `api_base` when one is given and need no credential but the key
# passed in: a warm-up call to a refused loopback port stays on this machine. Cloud providers that
# look up credentials of their own (bedrock, vertex_ai, sagemaker, watsonx...) are not warmed up:
# that lookup could leave the machine.
WARMABLE_PROVIDERS = frozenset({
    "openai", "text-completion-openai", "custom_openai", "openai_like", "hosted_vllm", "vllm", "anthropic",
    "azure", "azure_text", "litellm_proxy", "ollama", "ollama_chat", "lm_studio", "openrouter", "together_ai",
    "groq", "mistral", "deepseek", "fireworks_ai", "xai", "perplexity", "deepinfra", "cohere", "cohere_chat",
    "gemini", "nvidia_nim", "cerebras", "sambanova", "friendliai", "github"})
_MESSAGES = [{"role": "user", "content": "warm-up"}]
# One body every dialect can turn into its candidate request: messages, a prompt, an input.
_BODY = {"model": "warm-up", "messages": _MESSAGES, "prompt": "warm-up", "input": "warm-up", "max_tokens": 16}


async def warm_up(litellm, targets: Iterable[CallTarget], endpoints: dict[str, list[str]]) -> None:
    """`endpoints`: each candidate's name to the endpoints it is mirrored for (its config's
    `endpoints`). Failures are logged, never raised: a cold litellm is slower, not wrong."""
    try:
        await _mocked_calls(litellm)
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused at once
            refused = f"http://127.0.0.1:{closed.getsockname()[1]}/v1"
            for target, dialect in _paths_to_warm(litellm, targets, endpoints):
                await _refused_calls(litellm, target, dialect, refused)
    except Exception:
        log.warning("litellm warm-up failed; the first shadow calls will be slower", exc_info=True)
    await imports_settled(IMPORTS_SETTLE_TIMEOUT_S)


async def _mocked_calls(litellm) -> None:
    """A mocked answer, plain and streamed: litellm's response objects and its success logging,
    which a refused call never reaches."""
    await litellm.acompletion(model="openai/warm-up", messages=_MESSAGES, mock_response="ok")
    stream = await litellm.acompletion(model="openai/warm-up", messages=_MESSAGES, mock_response="ok", stream=True)
    async for _ in stream:
        pass


def _paths_to_warm(litellm, targets: Iterable[CallTarget], endpoints: dict[str, list[str]]
                   ) -> Iterator[tuple[CallTarget, Dialect]]:
    """One (target, dialect) per distinct litellm path: provider, the candidate's API, and the
    call its dialects make (chat or embedding). The primary twin's (an OpenAI-compatible call for
    each dialect that can be twinned) always."""
    twin = CallTarget(TWIN, "openai/warm-up", None, None, WARM_UP_TIMEOUT_S, 16)
    pairs = [(twin, dialect) for dialect in DIALECTS if dialect.twin_capable]
    pairs += [(target, dialect_named(name)) for target in targets if not target.is_twin
              for name in endpoints.get(target.name, ())]
    seen = set()
    for target, dialect in pairs:
        try:
            _, provider, _, _ = litellm.get_llm_provider(model=target.model, api_base=target.api_base)
            call = dialect.shadow_request(_BODY).api
        except Exception:
            continue  # no provider: every call fails at once, and the start-up check has said so
        if provider not in WARMABLE_PROVIDERS:
            log.debug("not warming up provider %s", provider, extra={"candidate": target.name})
            continue
        key = (provider, target.api, call)
        if key not in seen:
            seen.add(key)
            yield target, dialect


async def _refused_calls(litellm, target: CallTarget, dialect: Dialect, refused_base: str) -> None:
    """The candidate's own call, to a port that refuses it, with a placeholder key: the provider's
    request building, the HTTP client and the error mapping all get imported; nothing is sent."""
    warm = dataclasses.replace(target, api_base=refused_base, api_key="warm-up", timeout_s=WARM_UP_TIMEOUT_S)
    for stream in ((False, True) if dialect.streams_when_asked else (False,)):
        started = time.perf_counter()
        try:
            result = await call_candidate(litellm, dialect, {**_BODY, "stream": stream}, warm, stream=stream)
        except Exception as exc:  # a dialect that cannot build its request from the warm-up body
            log.debug("warm-up call not made: %s", exc, extra={"candidate": target.name})
            continue
        log.debug("warm-up call", extra={"candidate": target.name, "dialect": dialect.name, "stream": stream,
                                         "error_class": result.error_class,
                                         "ms": round((time.perf_counter() - started) * 1000, 1)})


def imports_in_progress() -> list[str]:
    """Modules some thread is importing right now (Python marks their spec while it runs them)."""
    return [name for name, module in list(sys.modules.items()) if _initializing(module)]


def _initializing(module: object) -> bool:
    try:
        return getattr(getattr(module, "__spec__", None), "_initializing", False) is True
    except Exception:  # an odd object in sys.modules (a lazy proxy) is not an import in progress
        return False


async def imports_settled(timeout_s: float) -> None:
    """Wait until no thread is importing a module: litellm's logging threads can still be loading
    integrations after the last warm-up call has returned."""
    deadline = time.monotonic() + timeout_s
    while (pending := imports_in_progress()) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    if pending:
        log.warning("modules still importing after the warm-up: %s", ", ".join(sorted(pending)[:5]))
