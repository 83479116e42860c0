"""What every API dialect provides, and the response record they all assemble into.

A dialect is one module that knows one API: which paths are its own and which HTTP methods they
take, how to assemble its responses (a JSON body or an event stream) into text, tool calls, finish
reason and usage, and what the shadow worker and replay may do with its requests. The forwarder,
capture, shadow planning, the evaluators and replay ask the dialect; none of them compares
endpoint names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class AssembledResponse:
    text: str | None = None  # the answer's text (chat content, completion text, Responses output_text)
    tool_calls: list[dict] | None = None  # OpenAI shape: {"id", "type": "function", "function": {...}}
    finish_reason: str | None = None  # as the dialect names it (Responses: incomplete reason, else status)
    # {"prompt_tokens", "completion_tokens", "total_tokens"}, plus "cache_creation_tokens" and
    # "cache_read_tokens" when the API reports them (already counted in prompt_tokens)
    usage: dict | None = None
    reasoning: str | None = None  # thinking text, kept apart from the answer text
    model: str | None = None  # as the upstream reported it
    body: object | None = None  # the parsed JSON of a non-stream response
    events: int = 0  # SSE data events seen, [DONE] included
    complete: bool = True  # stream saw its terminal event; body parsed
    parse_error: str | None = None  # why the body, or the first bad event, did not parse
    first_content_chunk: int | None = None  # read that completed the first content event (TTFT)


@dataclass(frozen=True)
class RequestPart:
    """One piece of text a request gives the model, in order: what evaluators and replay read.

    `kind` is "text" (a user, system or developer turn), "tool" (a tool's result) or "document"
    (a document block); the model's own earlier turns are never parts."""

    kind: str
    text: str
    ref: str | None = None  # the tool call id a result answers, or a document's title
    role: str | None = None


@dataclass(frozen=True)
class ShadowRequest:
    """What a candidate is asked. `api` is the litellm call ("chat" or "embedding"); `request` is
    in the Chat Completions shape litellm translates to any provider (or the embedding input);
    `native` is the request as a Responses API candidate should receive it, when there is one."""

    api: str
    request: dict
    native: dict | None = field(default=None)


class StreamAccumulator:
    """Collects one stream's events; `feed` returns True when an event carried content."""

    def __init__(self) -> None:
        self.text_parts: list[str] | None = None
        self.reasoning_parts: list[str] = []
        self.tool_calls: dict[object, dict] = {}
        self.finish_reason: str | None = None
        self.usage: dict | None = None
        self.model: str | None = None
        self.complete = False

    def feed(self, event: dict, event_name: str | None) -> bool:
        self.model = str_or_none(event.get("model")) or self.model
        self.usage = normalise_usage(event.get("usage")) or self.usage
        return False

    def add_text(self, text: object) -> bool:
        if not isinstance(text, str):
            return False
        if self.text_parts is None:
            self.text_parts = []
        self.text_parts.append(text)
        return bool(text)

    def finish(self, result: AssembledResponse) -> None:
        result.text = "".join(self.text_parts) if self.text_parts is not None else None
        result.tool_calls = list(self.tool_calls.values()) or None
        result.finish_reason = self.finish_reason
        result.reasoning = "".join(self.reasoning_parts) or None
        result.usage = self.usage
        result.model = self.model
        result.complete = self.complete


class Dialect:
    """The defaults describe an API shadowtap forwards but does not understand ("other")."""

    name = "other"
    captured = False  # recorded by default ([store] capture_all_endpoints records the rest too)
    mirrorable = False  # a candidate may be sent this request (if its `endpoints` lists the dialect)
    streams_when_asked = True  # `"stream": true` in the request means an event stream back
    twin_capable = False  # the primary's own second answer (its noise floor) can be asked for
    replayable = False  # replay can send a captured request again to a target
    # Which [primary] URL the dialect's requests go to: "openai" (`base_url`) or "anthropic"
    # (`anthropic_base_url`); each falls back to the other when only one is configured.
    upstream = "openai"
    # The methods forwarded on this dialect's paths; any other is answered 405 and never forwarded.
    # OpenAI's and Anthropic's APIs read with GET, create, update and act with POST, and delete
    # with DELETE (files, models, responses, batches); their SDKs send no PUT, PATCH, HEAD, OPTIONS
    # or TRACE. The order is the `Allow` header's.
    methods: tuple[str, ...] = ("GET", "POST", "DELETE")

    def owns(self, path: str) -> bool:
        return False

    def mirror_refusal(self, request: dict) -> str | None:
        """Why this particular request must not be mirrored (a skip reason), or None."""
        return None

    def assemble_body(self, body: dict, result: AssembledResponse) -> None:
        """Fill `result` from a parsed JSON response object (model and usage are already set)."""

    def stream_accumulator(self) -> StreamAccumulator:
        return StreamAccumulator()

    def usage(self, usage: object) -> dict | None:
        """The response's usage in shadowtap's terms (see AssembledResponse.usage)."""
        return normalise_usage(usage)

    # -- reading a request ------------------------------------------------------------------------

    def request_model(self, request: dict) -> str | None:
        return str_or_none(request.get("model"))

    def request_streams(self, request: dict) -> bool:
        return self.streams_when_asked and request.get("stream") is True

    def request_parts(self, request: dict) -> Iterator[RequestPart]:
        """Every text the request gives the model, in order (never the model's own earlier turns)."""
        return iter(())

    def declared_tools(self, request: dict) -> dict[str, dict | None]:
        """Function tools the request declares: name -> JSON Schema of the arguments (None: any)."""
        return {}

    def output_schema(self, request: dict) -> tuple[str, dict] | None:
        """(where it was asked for, JSON Schema) when the request asks for structured output."""
        return None

    # -- shadow calls and replay ------------------------------------------------------------------

    def chat_request(self, request: dict) -> dict:
        """The request in the Chat Completions shape (messages, tools, tool_choice, max_tokens...),
        which litellm translates for any provider: how a candidate or a replay target is asked."""
        return request

    def shadow_request(self, request: dict) -> ShadowRequest:
        return ShadowRequest("chat", self.chat_request(request))

    def last_user_text(self, request: dict) -> str | None:
        """The last user turn's text when it is one piece of text (what a paraphrase replaces)."""
        return None

    def with_user_text(self, request: dict, text: str) -> dict:
        """A deep copy of `request` whose last user turn says `text`; ValueError when it has none."""
        raise ValueError(f"a {self.name} request has no user message to replace")


def path_without_query(path: str) -> str:
    return path.split("?", 1)[0].rstrip("/")


def normalise_usage(usage: object) -> dict | None:
    """Map chat/completions and Responses API usage onto prompt/completion/total tokens."""
    if not isinstance(usage, dict):
        return None
    prompt = int_or_none(usage.get("prompt_tokens", usage.get("input_tokens")))
    completion = int_or_none(usage.get("completion_tokens", usage.get("output_tokens")))
    total = int_or_none(usage.get("total_tokens"))
    if completion is None and prompt is not None and total is not None and total >= prompt:
        completion = total - prompt  # embeddings report only prompt and total
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    if prompt is None and completion is None and total is None:
        return None
    normalised: dict = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}
    cached = _cached_prompt_tokens(usage)
    if cached:
        normalised["cache_read_tokens"] = cached
    return normalised


def _cached_prompt_tokens(usage: dict) -> int | None:
    """Prompt tokens OpenAI read from its prompt cache (counted in prompt_tokens, billed lower):
    `prompt_tokens_details.cached_tokens` (chat) or `input_tokens_details.cached_tokens` (Responses)."""
    for key in ("prompt_tokens_details", "input_tokens_details"):
        details = usage.get(key)
        if isinstance(details, dict):
            return int_or_none(details.get("cached_tokens"))
    return None


def choice_zero_deltas(event: dict) -> Iterator[dict]:
    """A stream event's choices with index 0: with n > 1, choices interleave chunk by chunk and
    only the first is assembled."""
    for choice in as_list(event.get("choices")):
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            yield choice


def choice_zero(choices: object) -> dict:
    candidates = [choice for choice in as_list(choices) if isinstance(choice, dict)]
    for choice in candidates:
        if choice.get("index", 0) == 0:
            return choice
    return candidates[0] if candidates else {}


def as_dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list:
    return value if isinstance(value, list) else []


def str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
