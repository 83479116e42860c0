"""One candidate call through litellm, under a total deadline, normalised to a shadow row.

The request's dialect says what the candidate is asked (`Dialect.shadow_request`); the candidate's
`api` says how: Chat Completions through `litellm.acompletion`, which reaches any provider in its
own API (so an Anthropic Messages primary is shadowed by an OpenAI-compatible candidate, and the
other way round), or the Responses API through `litellm.aresponses`. Chat calls to an
OpenAI-compatible `api_base` skip litellm (`direct.calls_directly` says which): the same request,
deadline and recorded outcome, over the worker's pooled aiohttp session.

Runs only in the shadow worker process (litellm costs seconds to import and milliseconds of CPU
per call, which the live process must never pay).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

import httpx

from shadowtap.core.config import CandidateConfig, ShadowConfig
from shadowtap.core.config.shadow import RESPONSES_API
from shadowtap.core.secrets import scrub_secrets
from shadowtap.proxy.dialects import AssembledResponse, Dialect, ShadowRequest
from shadowtap.proxy.dialects.responses import Responses, chat_to_responses
from shadowtap.proxy.shadow.direct import DirectClient, calls_directly

# Copied from the request when present; everything else (user, metadata, store...) stays behind.
_PASSED_THROUGH = ("tools", "tool_choice", "response_format", "temperature", "top_p", "seed", "stop",
                   "parallel_tool_calls", "presence_penalty", "frequency_penalty", "logit_bias", "n")
_EMBEDDING_PASSED_THROUGH = ("dimensions", "encoding_format")


@dataclass(frozen=True)
class CallTarget:
    """Where and as whom a shadow call goes: from config only, never from the request."""

    name: str
    model: str
    api_base: str | None
    api_key: str | None
    timeout_s: float
    max_tokens: int | None
    system_prompt: str = ""
    params: dict | None = None
    is_twin: bool = False
    api: str = "chat"  # chat | responses: which litellm function calls the candidate
    direct: bool = False  # Chat Completions calls skip litellm (proxy/shadow/direct.py)

    @classmethod
    def for_candidate(cls, candidate: CandidateConfig, shadow: ShadowConfig | None = None) -> CallTarget:
        key = os.environ.get(candidate.api_key_env) if candidate.api_key_env else None
        direct = shadow is not None and calls_directly(
            name=candidate.name, model=candidate.model, api_base=candidate.api_base, api=candidate.api,
            params=candidate.params, direct_providers=shadow.direct_providers,
            litellm_candidates=shadow.litellm_candidates)
        return cls(candidate.name, candidate.model, candidate.api_base or None, key, candidate.timeout_s,
                   candidate.max_tokens, candidate.system_prompt, dict(candidate.params), api=candidate.api,
                   direct=direct)


def configure_litellm(litellm) -> None:
    """Quiet, offline-friendly litellm that never follows a redirect.

    litellm's OpenAI-compatible calls go through the openai SDK, whose HTTP client follows redirects
    by default: a candidate answering 307 would send the request, and the candidate's key, to
    wherever it pointed. Upstream URLs come only from config, so a redirect is an error here."""
    litellm.suppress_debug_info = True
    litellm.telemetry = False
    litellm.aclient_session = httpx.AsyncClient(
        follow_redirects=False, timeout=None,
        limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100))


def scrub(message: str, secrets: list[str]) -> str:
    return scrub_secrets(message, secrets)[:2000]


def chat_kwargs(body: dict, target: CallTarget) -> dict:
    """litellm.acompletion arguments that preserve what the primary was asked."""
    messages = list(body.get("messages") or [])
    if target.system_prompt:
        messages = [m for m in messages if not (isinstance(m, dict) and m.get("role") in ("system", "developer"))]
        messages.insert(0, {"role": "system", "content": target.system_prompt})
    kwargs: dict = {"model": target.model, "messages": messages}
    for name in _PASSED_THROUGH:
        if name in body:
            kwargs[name] = body[name]
    requested = body.get("max_completion_tokens") or body.get("max_tokens")
    if target.max_tokens is not None:
        kwargs["max_tokens"] = min(requested, target.max_tokens) if isinstance(requested, int) else target.max_tokens
    elif isinstance(requested, int):
        kwargs["max_tokens"] = requested
    kwargs.update(target.params or {})
    return kwargs


@dataclass
class CallResult:
    outcome: str                 # ok | error | timeout | cancelled
    latency_ms: float | None = None
    ttft_ms: float | None = None
    text: str | None = None
    tool_calls: list | None = None
    finish_reason: str | None = None
    usage: dict | None = None
    error_class: str | None = None
    error_message: str | None = None


async def call_candidate(litellm, dialect: Dialect, body: dict, target: CallTarget, *, stream: bool,
                         direct: DirectClient | None = None) -> CallResult:
    """Ask `target` what the primary was asked, as the request's dialect builds it. Chat calls of
    a `target.direct` go through `direct` when one is given, the rest through litellm."""
    shadow = dialect.shadow_request(body)
    if shadow.api == "embedding":
        return await call_embedding(litellm, shadow.request, target)
    if target.api == RESPONSES_API:
        return await call_responses(litellm, shadow, target, stream=stream)
    if direct is not None and target.direct and target.api_base:
        return await call_chat_directly(direct, shadow.request, target, stream=stream)
    return await call_chat(litellm, shadow.request, target, stream=stream)


async def call_chat_directly(direct: DirectClient, body: dict, target: CallTarget, *, stream: bool) -> CallResult:
    """The same request as `call_chat`'s, under the same deadline, without litellm. One field keeps
    the request's own name: a limit asked as `max_completion_tokens` is sent as that, where litellm
    would rename it per model (reasoning models refuse `max_tokens`, and the twin asks the primary's)."""
    kwargs = chat_kwargs(body, target)
    if "max_completion_tokens" in body and "max_tokens" not in body and "max_tokens" in kwargs:
        kwargs["max_completion_tokens"] = kwargs.pop("max_tokens")
    api_base = target.api_base or ""

    async def complete(result: CallResult, started: float) -> None:
        await direct.chat(kwargs, api_base=api_base, api_key=target.api_key, stream=stream, result=result,
                          started=started)

    return await _timed_call(target, complete)


async def call_chat(litellm, body: dict, target: CallTarget, *, stream: bool) -> CallResult:
    """`body` is a Chat Completions request (`Dialect.chat_request` turns any other into one)."""
    kwargs = chat_kwargs(body, target)
    kwargs.update(_connection_kwargs(target))

    async def complete(result: CallResult, started: float) -> None:
        if stream:
            kwargs["stream"] = True
            kwargs["stream_options"] = {"include_usage": True}
            await _read_stream(await litellm.acompletion(**kwargs), result, started)
        else:
            _read_response(await litellm.acompletion(**kwargs), result)

    return await _timed_call(target, complete)


async def call_embedding(litellm, body: dict, target: CallTarget) -> CallResult:
    """The same input embedded by the candidate: outcome, latency, usage and cost are recorded;
    the vectors are not stored."""
    kwargs = {"model": target.model, "input": body.get("input")}
    for name in _EMBEDDING_PASSED_THROUGH:
        if name in body:
            kwargs[name] = body[name]
    kwargs.update(target.params or {})
    kwargs.update(_connection_kwargs(target))

    async def embed(result: CallResult, started: float) -> None:
        response = await litellm.aembedding(**kwargs)
        result.usage = _usage(getattr(response, "usage", None))

    return await _timed_call(target, embed)


async def call_responses(litellm, shadow: ShadowRequest, target: CallTarget, *, stream: bool) -> CallResult:
    """The candidate asked through the Responses API, with the request's own Responses body when
    it was one (else one built from the chat shape); never stored at the candidate."""
    kwargs = responses_kwargs(shadow, target)
    kwargs.update(_connection_kwargs(target))
    dialect = Responses()

    async def respond(result: CallResult, started: float) -> None:
        if stream:
            accumulator = dialect.stream_accumulator()
            async for event in await litellm.aresponses(**kwargs, stream=True):
                if accumulator.feed(_as_dict(event), None) and result.ttft_ms is None:
                    result.ttft_ms = round((time.perf_counter() - started) * 1000, 3)
            _take_assembled(accumulator, result)
        else:
            body = _as_dict(await litellm.aresponses(**kwargs))
            assembled = AssembledResponse(usage=dialect.usage(body.get("usage")))
            dialect.assemble_body(body, assembled)
            result.text, result.tool_calls = assembled.text, assembled.tool_calls
            result.finish_reason, result.usage = assembled.finish_reason, assembled.usage

    return await _timed_call(target, respond)


def responses_kwargs(shadow: ShadowRequest, target: CallTarget) -> dict:
    """litellm.aresponses arguments: the native Responses body, or the chat request rebuilt as one."""
    request = dict(shadow.native) if shadow.native is not None else chat_to_responses(shadow.request)
    request.pop("stream", None)
    request["store"] = False
    if target.system_prompt:
        request["instructions"] = target.system_prompt
    requested = request.get("max_output_tokens")
    if target.max_tokens is not None:
        request["max_output_tokens"] = (min(requested, target.max_tokens) if isinstance(requested, int)
                                        else target.max_tokens)
    request.update(target.params or {})
    request["model"] = target.model
    return request


def _as_dict(value: object) -> dict:
    if isinstance(value, dict):
        return value
    dump = getattr(value, "model_dump", None)
    dumped = dump() if callable(dump) else None
    return dumped if isinstance(dumped, dict) else {}


def _take_assembled(accumulator, result: CallResult) -> None:
    assembled = AssembledResponse()
    accumulator.finish(assembled)
    result.text, result.tool_calls = assembled.text, assembled.tool_calls
    result.finish_reason, result.usage = assembled.finish_reason, assembled.usage


def _connection_kwargs(target: CallTarget) -> dict:
    return {"api_base": target.api_base, "api_key": target.api_key or "no-key-configured",
            "timeout": target.timeout_s, "num_retries": 0, "max_retries": 0}


async def _timed_call(target: CallTarget, work) -> CallResult:
    """Runs `work(result, started)` under the target's total deadline; every failure is an outcome."""
    started = time.perf_counter()
    result = CallResult(outcome="ok")
    try:
        async with asyncio.timeout(target.timeout_s):  # a total deadline, not a per-read one
            await work(result, started)
    except TimeoutError:
        result.outcome, result.error_class = "timeout", "TimeoutError"
        result.error_message = f"no complete answer within {target.timeout_s:g}s"
    except asyncio.CancelledError:
        result.outcome, result.error_class, result.error_message = "cancelled", "CancelledError", "shutdown"
        raise
    except Exception as exc:  # every provider error is an outcome to record, not a crash
        # A direct call's failure carries the class litellm would have raised (direct.CandidateCallError).
        error_class = getattr(exc, "error_class", None) or type(exc).__name__
        result.outcome = "timeout" if "Timeout" in error_class else "error"
        result.error_class = error_class
        result.error_message = scrub(str(exc), [target.api_key or ""])
    finally:
        result.latency_ms = round((time.perf_counter() - started) * 1000, 3)
    return result


def _read_response(response, result: CallResult) -> None:
    choice = response.choices[0]
    message = choice.message
    result.text = message.content
    result.tool_calls = _tool_calls(getattr(message, "tool_calls", None))
    result.finish_reason = choice.finish_reason
    result.usage = _usage(getattr(response, "usage", None))


async def _read_stream(stream, result: CallResult, started: float) -> None:
    parts: list[str] = []
    calls: dict[int, dict] = {}
    async for chunk in stream:
        usage = _usage(getattr(chunk, "usage", None))
        if usage:
            result.usage = usage
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        delta = choice.delta
        if (delta.content or delta.tool_calls) and result.ttft_ms is None:
            result.ttft_ms = round((time.perf_counter() - started) * 1000, 3)
        if delta.content:
            parts.append(delta.content)
        for fragment in delta.tool_calls or []:
            call = calls.setdefault(fragment.index or 0, {"id": None, "type": "function",
                                                          "function": {"name": "", "arguments": ""}})
            call["id"] = call["id"] or fragment.id
            if fragment.function is not None:
                call["function"]["name"] += fragment.function.name or ""
                call["function"]["arguments"] += fragment.function.arguments or ""
        if choice.finish_reason:
            result.finish_reason = choice.finish_reason
    result.text = "".join(parts) if parts else None
    result.tool_calls = [calls[index] for index in sorted(calls)] or None


def _tool_calls(tool_calls) -> list | None:
    if not tool_calls:
        return None
    return [{"id": call.id, "type": "function",
             "function": {"name": call.function.name, "arguments": call.function.arguments}} for call in tool_calls]


def _usage(usage) -> dict | None:
    if not usage or not getattr(usage, "total_tokens", None):
        return None
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": getattr(usage, "completion_tokens", None),
            "total_tokens": usage.total_tokens}
