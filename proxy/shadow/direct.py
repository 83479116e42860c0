"""OpenAI-compatible candidates called directly: one pooled aiohttp session, no litellm per call.

litellm costs 3-12 ms of CPU per call (request objects, logging hooks, cost callbacks, its own
client per provider); a worker calling candidates through it managed 100-140 calls/s on one core.
A candidate that speaks Chat Completions at its own `api_base` needs none of that: this client
sends the request `chat_kwargs` builds for the litellm path, over a pooled session the way the live
path calls the primary, and reads the answer into the same `CallResult`. Failures are recorded
with the class and message litellm's OpenAI mapping gives them (`litellm.RateLimitError:
RateLimitError: OpenAIException - ...`), so the report's error reasons group the same way.

Which candidates: see `calls_directly`. Runs only in the shadow worker.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping

import aiohttp
import orjson

# Providers whose model string means "Chat Completions at api_base, model name after the slash".
DIRECT_PROVIDERS_DEFAULT = ("openai", "hosted_vllm")
# Keys of a candidate's `params` that litellm reads as call options, not request fields: a
# candidate that sets one keeps the litellm path, which knows what they mean.
LITELLM_CALL_OPTIONS = frozenset({
    "drop_params", "extra_headers", "api_version", "custom_llm_provider", "num_retries", "mock_response",
    "metadata", "caching", "fallbacks", "organization", "base_url", "api_base", "api_key", "timeout",
    "additional_drop_params", "allowed_openai_params"})
_CONTEXT_WINDOW_PHRASES = ("context_length_exceeded", "maximum context length", "context window",
                           "prompt is too long", "input is too long")
_NO_AUTO_HEADERS = ("User-Agent", "Accept-Encoding")


def provider_of(model: str) -> str:
    return model.split("/", 1)[0] if "/" in model else ""


def calls_directly(*, name: str, model: str, api_base: str | None, api: str, params: Mapping | None,
                   direct_providers: list[str] | tuple[str, ...], litellm_candidates: list[str]) -> bool:
    """The rule: Chat Completions (`api = "chat"`) at an explicit `api_base`, a model string whose
    provider is in `[shadow] direct_providers`, no litellm call option in `params`, and the name
    not in `[shadow] litellm_candidates`. Without an `api_base` the call goes to the provider's own
    cloud, where litellm's per-model parameter mapping (o-series `max_completion_tokens`...) matters."""
    return (api == "chat" and bool(api_base) and provider_of(model) in direct_providers
            and name not in litellm_candidates and not (set(params or {}) & LITELLM_CALL_OPTIONS))


class CandidateCallError(Exception):
    """A failed direct call, named as litellm names the same failure (`error_class`)."""

    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class


def _provider_label(provider: str) -> str:
    return "OpenAIException" if provider == "openai" else provider[:1].upper() + provider[1:] + "Exception"


def litellm_style_error(error_class: str, provider: str, message: str) -> CandidateCallError:
    """The message litellm's exception mapping writes: its class is repeated, except for
    BadRequestError (as litellm 1.106 does)."""
    label = _provider_label(provider)
    repeated = "" if error_class == "BadRequestError" else f"{error_class}: "
    return CandidateCallError(error_class, f"litellm.{error_class}: {repeated}{label} - {message}")


def status_error(status: int, text: str, provider: str) -> CandidateCallError:
    """litellm's mapping of an OpenAI-compatible error answer (litellm_core_utils/
    exception_mapping_utils.py, the openai branch), checked in its order."""
    message = _error_message(status, text)
    lowered = text.lower()
    if status == 429:
        error_class = "RateLimitError"
    elif any(phrase in lowered for phrase in _CONTEXT_WINDOW_PHRASES):
        error_class = "ContextWindowExceededError"
    elif "invalid_request_error" in text and "model_not_found" in text:
        error_class = "NotFoundError"
    elif "invalid_request_error" in text and "content_policy_violation" in text:
        error_class = "ContentPolicyViolationError"
    elif "invalid_request_error" in text and "Incorrect API key provided" not in text:
        error_class = "BadRequestError"
    elif "The server had an error processing your request." in text:
        error_class = "InternalServerError"
    else:
        error_class = {400: "BadRequestError", 401: "AuthenticationError", 404: "NotFoundError", 408: "Timeout",
                       422: "BadRequestError", 500: "InternalServerError", 502: "BadGatewayError",
                       503: "ServiceUnavailableError", 504: "Timeout"}.get(status, "APIError")
    return litellm_style_error(error_class, provider, message)


def _error_message(status: int, text: str) -> str:
    """What the openai SDK puts in its error (the body's error.message, else the status and
    body), which is what litellm quotes."""
    text = text.strip()
    try:
        body = orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
    return f"Error code: {status} - {text}" if text else f"Error code: {status}"


class DirectClient:
    """One pooled session for every directly called candidate of a worker. `start()` in the
    worker's event loop before the first call; `close()` at the end."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),  # caps are the worker's
            timeout=aiohttp.ClientTimeout(total=None),  # the call's total deadline is calls._timed_call's
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_NO_AUTO_HEADERS,
            trust_env=False,  # candidate URLs come only from config, never from a proxy variable
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def chat(self, kwargs: dict, *, api_base: str, api_key: str | None, stream: bool, result,
                   started: float) -> None:
        """POST `kwargs` (calls.chat_kwargs: a litellm model string, then request fields) to
        `api_base`/chat/completions and fill `result` (a calls.CallResult)."""
        assert self._session is not None, "DirectClient.start() was not awaited"
        model = kwargs["model"]
        provider = provider_of(model)
        body = request_body(kwargs, stream=stream)
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if stream else "application/json",
                   "Authorization": f"Bearer {api_key or 'no-key-configured'}"}
        try:
            async with self._session.post(api_base.rstrip("/") + "/chat/completions", data=orjson.dumps(body),
                                          headers=headers, allow_redirects=False) as response:
                if response.status != 200:
                    raise status_error(response.status, await response.text(errors="replace"), provider)
                if stream:
                    await read_event_stream(response.content, result, started, provider)
                else:
                    read_completion(_json(await response.read(), provider), result)
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError):
            # What litellm records for a refused, reset or dropped connection to an openai/ candidate.
            raise litellm_style_error("InternalServerError", provider, "Connection error.") from None


def request_body(kwargs: dict, *, stream: bool) -> dict:
    """The Chat Completions body: the model name after the provider prefix, `extra_body` merged."""
    body = {key: value for key, value in kwargs.items() if key != "extra_body"}
    body["model"] = kwargs["model"].split("/", 1)[1]
    extra = kwargs.get("extra_body")
    if isinstance(extra, dict):
        body.update(extra)
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _json(raw: bytes, provider: str) -> dict:
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise litellm_style_error("APIError", provider, "the answer is not JSON") from None
    if not isinstance(parsed, dict):
        raise litellm_style_error("APIError", provider, "the answer is not a JSON object")
    return parsed


def read_completion(body: dict, result) -> None:
    choices = body.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        raise litellm_style_error("APIError", "openai", "the answer has no choices")
    choice = choices[0]
    message = choice.get("message") or {}
    result.text = message.get("content")
    result.tool_calls = _tool_calls(message.get("tool_calls"))
    result.finish_reason = choice.get("finish_reason")
    result.usage = usage_of(body.get("usage"))


async def read_event_stream(content: aiohttp.StreamReader, result, started: float, provider: str) -> None:
    """Server-sent Chat Completions chunks, assembled as calls._read_stream assembles litellm's."""
    parts: list[str] = []
    calls: dict[int, dict] = {}
    async for line in _lines(content):
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            break
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(chunk, dict):
            continue
        if chunk.get("error"):
            raise litellm_style_error("APIError", provider, _error_message(200, data.decode(errors="replace")))
        usage = usage_of(chunk.get("usage"))
        if usage:
            result.usage = usage
        choices = chunk.get("choices")
        if not choices:
            continue
        choice = choices[0]
        delta = choice.get("delta") or {}
        content_part, fragments = delta.get("content"), delta.get("tool_calls")
        if (content_part or fragments) and result.ttft_ms is None:
            result.ttft_ms = round((time.perf_counter() - started) * 1000, 3)
        if content_part:
            parts.append(content_part)
        for fragment in fragments or []:
            call = calls.setdefault(fragment.get("index") or 0, {"id": None, "type": "function",
                                                                 "function": {"name": "", "arguments": ""}})
            call["id"] = call["id"] or fragment.get("id")
            function = fragment.get("function")
            if function:
                call["function"]["name"] += function.get("name") or ""
                call["function"]["arguments"] += function.get("arguments") or ""
        if choice.get("finish_reason"):
            result.finish_reason = choice["finish_reason"]
    result.text = "".join(parts) if parts else None
    result.tool_calls = [calls[index] for index in sorted(calls)] or None


async def _lines(content: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """The stream's lines, however long: aiohttp's own line reader raises LineTooLong past
    512 KiB (aiohttp 3.14), and one event of a large tool call can be longer."""
    pending = b""
    async for data in content.iter_any():
        if b"\n" not in data:
            pending += data
            continue
        pending += data
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.rstrip(b"\r")
    if pending:
        yield pending.rstrip(b"\r")


def _tool_calls(tool_calls) -> list | None:
    if not tool_calls:
        return None
    return [{"id": call.get("id"), "type": "function",
             "function": {"name": (call.get("function") or {}).get("name"),
                          "arguments": (call.get("function") or {}).get("arguments")}} for call in tool_calls]


def usage_of(usage) -> dict | None:
    if not isinstance(usage, dict) or not usage.get("total_tokens"):
        return None
    return {"prompt_tokens": usage.get("prompt_tokens"), "completion_tokens": usage.get("completion_tokens"),
            "total_tokens": usage.get("total_tokens")}
