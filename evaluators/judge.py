"""The judge: an LLM client for ragas metrics, built from `[judge]`, with its own concurrency limit and budget.

    ShadowtapError
    └── JudgeError               a judge call failed; the runner records it as the evaluator's error
        ├── JudgeUnavailable     unreachable, timed out, or answered with an HTTP error
        ├── JudgeReplyInvalid    the reply was not the JSON the metric asked for
        └── JudgeBudgetExceeded  `[judge] budget_usd` is spent: no more judge calls this run

Nothing here imports ragas, instructor, openai or litellm until the first judge call: the evaluator
registry imports this module, and those imports cost seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import importlib
import ipaddress
import logging
import os
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from shadowtap.core.config import JudgeConfig
from shadowtap.core.errors import ConfigError, ShadowtapError
from shadowtap.proxy.capture.pricing import PriceTable

logger = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4           # rough, for estimates and for replies that report no usage
_INSTRUCTOR_RETRIES = 0       # a re-ask is another paid call; a judge that sent bad JSON rarely fixes it
_FENCED = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)\n?[ \t]*```", re.DOTALL)


class JudgeError(ShadowtapError):
    """A judge call failed."""


class JudgeUnavailable(JudgeError):
    """The judge could not be reached, did not answer in time, or answered with an HTTP error."""


class JudgeReplyInvalid(JudgeError):
    """The judge answered, but not with the JSON the metric asked for."""


class JudgeBudgetExceeded(JudgeError):
    """`[judge] budget_usd` has been spent; no further judge calls are made."""


def strip_json_fence(text: str) -> str:
    """The JSON inside a ```json … ``` fence (prose around it allowed); other text unchanged."""
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        return text
    match = _FENCED.search(stripped)
    return match.group(1).strip() if match else text


@dataclass
class JudgeSession:
    """The judge calls made to score one item: the structured outputs in order, tokens and cost."""

    outputs: list[Any] = field(default_factory=list)
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0

    def as_details(self, model: str) -> dict[str, Any]:
        return {"model": model, "calls": self.calls, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 8)}


# The session whose judge call is in flight in this task; the HTTP hook charges its usage there.
_current_session: contextvars.ContextVar[JudgeSession | None] = contextvars.ContextVar(
    "shadowtap_judge_session", default=None)


class JudgeBudget:
    """Estimated spend against `[judge] budget_usd`.

    An item reserves its estimated cost before its first call and is refused once the spend has
    reached the limit; an item already started finishes, so no paid call is wasted on a half-scored
    item. Items whose estimate would cross the limit wait for those in flight instead of overshooting.
    """

    def __init__(self, limit_usd: float) -> None:
        self.limit_usd = limit_usd
        self.spent_usd = 0.0
        self.calls = 0
        self._reserved = 0.0
        self._changed = asyncio.Condition()

    async def reserve(self, estimate_usd: float) -> None:
        async with self._changed:
            while self._reserved > 0 and self.spent_usd + self._reserved + estimate_usd > self.limit_usd:
                await self._changed.wait()
            if self.spent_usd >= self.limit_usd:
                raise JudgeBudgetExceeded(
                    f"[judge] budget_usd = {self.limit_usd:g} is spent (about ${self.spent_usd:.4g} on "
                    f"{self.calls} judge calls); no more judge calls in this run")
            self._reserved += estimate_usd

    async def release(self, estimate_usd: float) -> None:
        async with self._changed:
            self._reserved = max(0.0, self._reserved - estimate_usd)
            self._changed.notify_all()

    def charge(self, cost_usd: float) -> None:
        self.spent_usd += cost_usd
        self.calls += 1


class JudgeClient:
    """Builds the ragas LLM for `[judge]` and puts every judge call under one semaphore and one budget.

    Routing follows litellm's model strings: `openai/NAME` (or a bare NAME with `api_base` set) goes
    to an OpenAI-compatible endpoint through the openai SDK, over an httpx transport that strips
    ```json fences before instructor parses the reply; any other provider prefix goes through
    `litellm.acompletion`, wrapped to do the same. `transport` replaces the network in tests.
    """

    def __init__(self, config: JudgeConfig, *, transport: httpx.AsyncBaseTransport | None = None,
                 prices: PriceTable | None = None, environ: Mapping[str, str] | None = None,
                 http_retries: int = 2) -> None:
        if not config.model:
            raise ConfigError("[judge] model = '': a judge model is needed for judge-based evaluators")
        self.config = config
        self.model = config.model
        self._transport = transport
        self._http_retries = http_retries
        self._prices = prices if prices is not None else PriceTable.from_litellm_package()
        self._api_key = _api_key(config, os.environ if environ is None else environ)
        provider, _, name = config.model.partition("/")
        if provider == "openai" and name:          # litellm's spelling of "any OpenAI-compatible endpoint"
            self._openai_route, self._wire_model = True, name
        else:                                      # a bare name at api_base, or a provider litellm knows
            self._openai_route, self._wire_model = not name and bool(config.api_base), config.model
        self.budget = JudgeBudget(config.budget_usd)
        self._semaphore = asyncio.Semaphore(config.max_concurrency)
        self._llm: Any = None
        self._http_client: httpx.AsyncClient | None = None
        self._build_lock = asyncio.Lock()
        self._warned_unpriced = False

    def __repr__(self) -> str:  # never the key
        return f"JudgeClient(model={self.model!r}, api_base={self.config.api_base!r})"

    @property
    def description(self) -> str:
        return f"judge {self.model!r}" + (f" at {self.config.api_base}" if self.config.api_base else "")

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """Price of one call by litellm's table, or None when the judge model has no price there."""
        return self._prices.cost_usd(self.model, prompt_tokens, completion_tokens)

    @contextlib.asynccontextmanager
    async def session(self, *, estimate_usd: float | None = None) -> AsyncIterator[JudgeSession]:
        """Open the judge calls for one item; raises `JudgeBudgetExceeded` once the budget is spent."""
        reserved = estimate_usd or 0.0
        await self.budget.reserve(reserved)
        try:
            yield JudgeSession()
        finally:
            await self.budget.release(reserved)

    def ragas_llm(self, session: JudgeSession) -> Any:
        """A ragas `InstructorBaseRagasLLM` whose calls go through this client and land in `session`."""
        return _recording_llm_class()(self, session)

    async def generate(self, prompt: str, response_model: type, session: JudgeSession) -> Any:
        """One judge call: ragas' prompt in, an instance of `response_model` out."""
        llm = await self._ragas_llm()
        token = _current_session.set(session)
        try:
            async with self._semaphore:
                result = await llm.agenerate(prompt, response_model)
        except Exception as exc:
            raise self._failure(exc, response_model) from exc
        finally:
            _current_session.reset(token)
        session.outputs.append(result)
        return result

    async def aclose(self) -> None:
        """Close the judge's connections; the next call builds a new client."""
        if self._http_client is not None:
            await self._http_client.aclose()
        self._llm = self._http_client = None

    # -- building the client (first call only) ------------------------------------------------------

    async def _ragas_llm(self) -> Any:
        async with self._build_lock:
            if self._llm is None:
                if self.config.api_base and not self.config.allow_private_network:
                    await _refuse_private_network(self.config.api_base)
                self._llm = self._build_openai_llm() if self._openai_route else self._build_litellm_llm()
        return self._llm

    def _build_openai_llm(self) -> Any:
        import openai

        llm_factory = import_ragas("ragas.llms").llm_factory
        inner = self._transport or httpx.AsyncHTTPTransport()
        self._http_client = httpx.AsyncClient(transport=_FenceTolerantTransport(inner, self), timeout=None)
        # Local OpenAI-compatible servers usually need no key, but the SDK insists on one.
        api_key = self._api_key or ("unused" if self.config.api_base else None)
        client = openai.AsyncOpenAI(api_key=api_key, base_url=self.config.api_base or None,
                                    timeout=self.config.timeout_s, max_retries=self._http_retries,
                                    http_client=self._http_client)
        return llm_factory(self._wire_model, provider="openai", client=client, max_retries=_INSTRUCTOR_RETRIES)

    def _build_litellm_llm(self) -> Any:
        llm_factory = import_ragas("ragas.llms").llm_factory
        import litellm  # import_ragas has set LITELLM_LOCAL_MODEL_COST_MAP

        litellm.suppress_debug_info = True
        call_options: dict[str, Any] = {"timeout": self.config.timeout_s, "num_retries": self._http_retries,
                                        "drop_params": True}
        if self.config.api_base:
            call_options["api_base"] = self.config.api_base
        if self._api_key:
            call_options["api_key"] = self._api_key

        async def complete(**kwargs: Any) -> Any:
            response = await litellm.acompletion(**kwargs, **call_options)
            for choice in response.choices:
                if isinstance(choice.message.content, str):
                    choice.message.content = strip_json_fence(choice.message.content)
            usage = getattr(response, "usage", None)
            self._charge(getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None),
                         prompt_chars=len(str(kwargs.get("messages", ""))),
                         reply_chars=sum(len(c.message.content or "") for c in response.choices))
            return response

        return llm_factory(self._wire_model, provider="litellm", client=complete, max_retries=_INSTRUCTOR_RETRIES)

    # -- accounting and errors --------------------------------------------------------------------

    def _charge(self, prompt_tokens: int | None, completion_tokens: int | None, *,
                prompt_chars: int, reply_chars: int) -> None:
        """Count one answered judge call against the budget and the current item's session."""
        prompt_tokens = prompt_tokens if isinstance(prompt_tokens, int) else prompt_chars // CHARS_PER_TOKEN
        completion_tokens = (completion_tokens if isinstance(completion_tokens, int)
                             else reply_chars // CHARS_PER_TOKEN)
        cost = self.cost_usd(prompt_tokens, completion_tokens)
        if cost is None and not self._warned_unpriced:
            self._warned_unpriced = True
            logger.warning("judge model %r has no price in litellm's table; [judge] budget_usd cannot "
                           "limit its spend", self.model)
        self.budget.charge(cost or 0.0)
        session = _current_session.get()
        if session is not None:
            session.calls += 1
            session.prompt_tokens += prompt_tokens
            session.completion_tokens += completion_tokens
            session.cost_usd = None if cost is None or session.cost_usd is None else session.cost_usd + cost

    def _on_completion_payload(self, payload: Any, prompt_chars: int) -> Any:
        """Strip fences from an OpenAI chat completion body and charge its usage."""
        reply_chars = 0
        for choice in payload.get("choices") or []:
            message = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                message["content"] = strip_json_fence(message["content"])
                reply_chars += len(message["content"])
        usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else {}
        self._charge(usage.get("prompt_tokens"), usage.get("completion_tokens"),
                     prompt_chars=prompt_chars, reply_chars=reply_chars)
        return payload

    def _failure(self, exc: Exception, response_model: type) -> JudgeError:
        """A clear, key-free error for a failed judge call."""
        import json

        import openai
        import pydantic

        if isinstance(exc, JudgeError):
            return exc
        cause = _root_cause(exc)
        wanted = getattr(response_model, "__name__", "the requested JSON")
        if isinstance(cause, openai.APITimeoutError):
            message = f"{self.description} did not answer within {self.config.timeout_s:g}s"
            kind: type[JudgeError] = JudgeUnavailable
        elif isinstance(cause, openai.APIStatusError):
            message = f"{self.description} answered HTTP {cause.status_code}: {_snippet(cause.message, 300)}"
            kind = JudgeUnavailable
        elif isinstance(cause, openai.APIConnectionError):
            message = f"cannot reach {self.description}: {_snippet(str(cause), 200)}"
            kind = JudgeUnavailable
        elif type(cause).__name__ == "IncompleteOutputException":
            message = f"{self.description} stopped at its token limit before finishing the {wanted} JSON"
            kind = JudgeReplyInvalid
        elif isinstance(cause, (pydantic.ValidationError, json.JSONDecodeError)):
            reply = _last_reply(exc)
            message = (f"{self.description} did not reply with the {wanted} JSON ragas expects: "
                       f"{_snippet(_first_line(cause), 200)}"
                       + (f"; reply began {_snippet(reply, 160)!r}" if reply is not None else ""))
            kind = JudgeReplyInvalid
        else:
            message = f"{self.description} call failed: {type(cause).__name__}: {_snippet(str(cause), 300)}"
            kind = JudgeError
        if self._api_key:
            message = message.replace(self._api_key, "***")
        return kind(message)


class _FenceTolerantTransport(httpx.AsyncBaseTransport):
    """Rewrites answered /chat/completions bodies so fenced JSON reaches instructor as plain JSON."""

    def __init__(self, inner: httpx.AsyncBaseTransport, judge: JudgeClient) -> None:
        self._inner = inner
        self._judge = judge

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if response.status_code != 200 or not request.url.path.endswith("/chat/completions"):
            return response
        body = await response.aread()
        await response.aclose()
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            payload = None
        if isinstance(payload, dict):
            body = orjson.dumps(self._judge._on_completion_payload(payload, prompt_chars=len(request.content)))
        # aread() decoded any content-encoding; the new body is plain and has a new length.
        headers = [(k, v) for k, v in response.headers.multi_items()
                   if k.lower() not in ("content-length", "content-encoding", "transfer-encoding")]
        return httpx.Response(response.status_code, headers=headers, content=body, request=request,
                              extensions=response.extensions)

    async def aclose(self) -> None:
        await self._inner.aclose()


@functools.cache
def _recording_llm_class() -> type:
    # Defined on first use: the base class is ragas', and ragas is imported only when a judge is used.
    # Annotated Any: a class found at run time, which the type checker cannot see as a base class.
    InstructorBaseRagasLLM: Any = import_ragas("ragas.llms.base").InstructorBaseRagasLLM  # noqa: N806

    class RecordingJudgeLLM(InstructorBaseRagasLLM):
        """Sends each ragas prompt through the JudgeClient; the session keeps every structured output."""

        def __init__(self, judge: JudgeClient, session: JudgeSession) -> None:
            self.judge = judge
            self.session = session

        def generate(self, prompt: str, response_model: type) -> Any:
            raise TypeError("the shadowtap judge is asynchronous; use agenerate()")

        async def agenerate(self, prompt: str, response_model: type) -> Any:
            return await self.judge.generate(prompt, response_model, self.session)

    return RecordingJudgeLLM


def import_ragas(module: str) -> ModuleType:
    """Import a ragas module, with ragas' telemetry and litellm's price-map download off first."""
    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    return importlib.import_module(module)


def _api_key(config: JudgeConfig, environ: Mapping[str, str]) -> str | None:
    if config.api_key_env:
        value = environ.get(config.api_key_env)
        if not value:
            raise ConfigError(f"[judge] api_key_env = {config.api_key_env!r}: the environment variable "
                              f"{config.api_key_env} is not set or empty")
        return value
    provider, _, name = config.model.partition("/")
    if provider == "openai" and name and not config.api_base:
        if not environ.get("OPENAI_API_KEY"):
            raise ConfigError(f"[judge] api_key_env = '': the judge {config.model!r} needs an API key; name "
                              "the environment variable that holds it, or set OPENAI_API_KEY")
        return environ["OPENAI_API_KEY"]
    return None


async def _refuse_private_network(api_base: str) -> None:
    host = urlsplit(api_base).hostname or ""
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(host, None), timeout=5)
        except (TimeoutError, OSError):
            return  # unresolvable: the call itself will fail with a clear "cannot reach"
        # A Python built without IPv6 reports an IPv6 address as (family, raw bytes); it cannot connect to it either.
        resolved = [info[4][0] for info in infos]
        addresses = [ipaddress.ip_address(ip.split("%", 1)[0]) for ip in resolved if isinstance(ip, str)]
    private = [str(a) for a in addresses if a.is_private or a.is_loopback or a.is_link_local or a.is_reserved]
    if private:
        raise ConfigError(f"[judge] api_base = {api_base!r} resolves to a private address ({private[0]}); "
                          "set [judge] allow_private_network = true to use a judge on your own network")


def _root_cause(exc: BaseException) -> BaseException:
    """The first underlying error under instructor's retry wrapper."""
    seen = {id(exc)}
    while type(exc).__name__ == "InstructorRetryException" and exc.__cause__ is not None:
        exc = exc.__cause__
        if id(exc) in seen:
            break
        seen.add(id(exc))
    return exc


def _last_reply(exc: BaseException) -> str | None:
    completion = getattr(exc, "last_completion", None)
    try:
        return completion.choices[0].message.content  # type: ignore[union-attr]
    except (AttributeError, IndexError, TypeError):
        return None


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    # pydantic: "1 validation error for X" / "field" / "  Invalid JSON: ..."; the reason is the most useful.
    return " ".join(lines[:3]) if lines else type(exc).__name__


def _snippet(text: str | None, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
