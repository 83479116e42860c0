"""Pure builders of the simulator's answers: the reply a request deserves, and the OpenAI-shaped
objects and stream chunks that carry it. Same body and digest in, same objects out."""

import base64
import hashlib
import math
import re
import struct
from dataclasses import dataclass

import orjson

from . import personas
from .corpus import best_document, best_sentence, key_words

MODELS = ("sim-small", "sim-large", "sim-embed", "sim-drifty", "sim-slow", "sim-sloppy", "sim-souring")
FINGERPRINT = "fp_sim"
MAX_CHUNKS = 20
DEFAULT_DIMENSIONS = 16

_CONTEXT = re.compile(r"<context>(.*?)</context>", re.S | re.I)
_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD_BOUNDARY = re.compile(r"(?<=\s)(?=\S)")
_JSON_PIECE = re.compile(r"\w+|\W+")
_PROPER_NOUN = re.compile(r"(?<=\s)([A-Z][A-Za-z0-9-]+)")
_SCALARS = {"integer": 1, "number": 1.0, "boolean": True, "null": None}


class InvalidRequest(ValueError):
    """The body is JSON but not a request this endpoint can answer; becomes a 400."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True, slots=True)
class Reply:
    """What the assistant says: text, or a single function call."""

    content: str | None
    tool_call: dict | None = None

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tool_call else "stop"

    @property
    def tokens(self) -> int:
        if self.tool_call:
            function = self.tool_call["function"]
            return count_tokens(function["name"]) + count_tokens(function["arguments"])
        return count_tokens(self.content or "")


def count_tokens(text: str) -> int:
    """A stand-in tokenizer: every word and every punctuation mark is one token."""
    return len(_TOKEN.findall(text))


def created_from(digest: str) -> int:
    """A fixed, plausible Unix time derived from the request digest, so bodies never vary."""
    return 1_700_000_000 + int(digest[:8], 16) % 31_536_000


def text_of(content: object) -> str:
    """The text inside a message content: a string, or a list of parts carrying "text"."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = (part if isinstance(part, str) else part.get("text") for part in content
                 if isinstance(part, (str, dict)))
        return " ".join(t for t in texts if isinstance(t, str))
    return ""


def answer_sentence(messages: list[dict]) -> str:
    """A sentence grounded in the request's own context when it has some, else in the corpus."""
    question = _question(messages)
    passages = [block for m in messages if m.get("role") in ("system", "developer", "user")
                for block in _CONTEXT.findall(text_of(m.get("content")))]
    passages += [text_of(m.get("content")) for m in messages if m.get("role") == "tool"]
    if any(p.strip() for p in passages):
        return best_sentence(question, passages)
    doc = best_document(question)
    return f"According to {doc.title}: {best_sentence(question, [doc.text])}"


def chat_reply(body: dict, digest: str = "") -> Reply:
    """Decide what the assistant answers to a chat request: a tool call or (formatted) text,
    as the requested model's persona would put it."""
    reply = _plain_chat_reply(body)
    structured = (body.get("response_format") or {}).get("type") in ("json_object", "json_schema")
    content = personas.adjust_content(_model(body), digest, reply.content, structured)
    return reply if content == reply.content else Reply(content, reply.tool_call)


def _plain_chat_reply(body: dict) -> Reply:
    messages = _messages(body)
    question = _question(messages)
    tool = _chosen_tool(body)
    if tool is not None and not _tool_answered(messages):
        arguments = fill_schema(tool.get("parameters") or {"type": "object"}, topic_word(question))
        call_id = "call_sim_" + hashlib.sha256(orjson.dumps(messages)).hexdigest()[:20]
        function = {"name": tool["name"], "arguments": orjson.dumps(arguments).decode()}
        return Reply(None, {"id": call_id, "type": "function", "function": function})
    sentence = answer_sentence(messages)
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_object":
        return Reply(orjson.dumps({"answer": sentence}).decode())
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
        return Reply(orjson.dumps(fill_schema(schema, topic_word(question), sentence)).decode())
    return Reply(sentence)


def topic_word(question: str) -> str:
    """The question's most telling word: a capitalised one if any, else the longest key word."""
    proper = _PROPER_NOUN.findall(question)
    if proper:
        return proper[0]
    candidates = sorted(key_words(question), key=lambda w: (-len(w), w))
    return candidates[0] if candidates else "example"


def fill_schema(schema: dict, word: str = "example", answer: str | None = None) -> object:
    """A value satisfying a JSON schema's required parts; the first string filled is answer."""
    pending = [answer] if answer is not None else []

    def fill(node: dict, depth: int) -> object:
        if depth > 32 or not isinstance(node, dict):  # a recursive $ref must still end
            return None
        if "$ref" in node:
            return fill(_resolve(schema, node["$ref"]), depth + 1)
        if "const" in node:
            return node["const"]
        if node.get("enum"):
            return node["enum"][0]
        options = node.get("anyOf") or node.get("oneOf") or node.get("allOf")
        if options:  # the first non-null option, so Optional[str] still gets a string
            chosen = next((o for o in options if o.get("type") != "null"), options[0])
            return fill(chosen, depth + 1)
        kind = node.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        kind = kind or ("object" if "properties" in node else "string")
        if kind == "object":
            properties = node.get("properties") or {}
            names = node.get("required", list(properties))
            return {name: fill(properties.get(name, {}), depth + 1) for name in names}
        if kind == "array":
            items = node.get("items") or {}
            return [fill(items, depth + 1) for _ in range(node.get("minItems", 0))]
        if kind == "string":
            return pending.pop() if pending else word
        return _SCALARS.get(kind)

    return fill(schema, 0)


def chat_completion(body: dict, digest: str) -> dict:
    reply = chat_reply(body, digest)
    message: dict = {"role": "assistant", "content": reply.content, "refusal": None}
    if reply.tool_call:
        message["tool_calls"] = [reply.tool_call]
    return {
        "id": f"chatcmpl-sim-{digest}", "object": "chat.completion",
        "created": created_from(digest), "model": _model(body),
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": reply.finish_reason}],
        "usage": _usage(_prompt_tokens(_messages(body)), reply.tokens),
        "system_fingerprint": FINGERPRINT,
    }


def chat_completion_chunks(body: dict, digest: str) -> list[dict]:
    reply = chat_reply(body, digest)
    include_usage = _include_usage(body)
    base = {"id": f"chatcmpl-sim-{digest}", "object": "chat.completion.chunk",
            "created": created_from(digest), "model": _model(body),
            "system_fingerprint": FINGERPRINT}

    def chunk(delta: dict, finish_reason: str | None = None) -> dict:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**base, "choices": [choice], **({"usage": None} if include_usage else {})}

    if reply.tool_call:
        call = reply.tool_call
        opening = {"index": 0, "id": call["id"], "type": "function",
                   "function": {"name": call["function"]["name"], "arguments": ""}}
        chunks = [chunk({"role": "assistant", "content": None, "tool_calls": [opening],
                         "refusal": None})]
        chunks += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                   for piece in _pieces(_JSON_PIECE.findall(call["function"]["arguments"]))]
    else:
        chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
        chunks += [chunk({"content": piece}) for piece in _word_pieces(reply.content or "")]
    chunks.append(chunk({}, reply.finish_reason))
    if include_usage:
        usage = _usage(_prompt_tokens(_messages(body)), reply.tokens)
        chunks.append({**base, "choices": [], "usage": usage})
    return chunks


def text_completion(body: dict, digest: str) -> dict:
    prompt = _prompt(body)
    text = answer_sentence([{"role": "user", "content": prompt}])
    choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}
    return {"id": f"cmpl-sim-{digest}", "object": "text_completion",
            "created": created_from(digest), "model": _model(body), "choices": [choice],
            "usage": _usage(count_tokens(prompt), count_tokens(text))}


def text_completion_chunks(body: dict, digest: str) -> list[dict]:
    whole = text_completion(body, digest)
    base = {k: whole[k] for k in ("id", "object", "created", "model")}

    def chunk(text: str, finish_reason: str | None = None) -> dict:
        return {**base, "choices": [{"text": text, "index": 0, "logprobs": None,
                                     "finish_reason": finish_reason}]}

    chunks = [chunk(piece) for piece in _word_pieces(whole["choices"][0]["text"])]
    chunks.append(chunk("", "stop"))
    if _include_usage(body):
        chunks.append({**base, "choices": [], "usage": whole["usage"]})
    return chunks


def embedding_list(body: dict) -> dict:
    """Unit vectors seeded by each input's hash: equal inputs embed equally, others differ."""
    raw = body.get("input")
    items = [raw] if isinstance(raw, str) or _is_token_list(raw) else raw
    if not isinstance(items, list) or not items or not all(
            isinstance(i, str) or _is_token_list(i) for i in items):
        raise InvalidRequest("'input' must be a string, or a list of strings or token arrays.",
                             "input")
    dimensions = body.get("dimensions") or DEFAULT_DIMENSIONS
    if not isinstance(dimensions, int) or not 0 < dimensions <= 4096:
        raise InvalidRequest(f"'dimensions' must be an integer from 1 to 4096, got {dimensions!r}.",
                             "dimensions")
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate(items):
        vector = _unit_vector(item if isinstance(item, str) else orjson.dumps(item).decode(),
                              dimensions)
        encoded = (base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
                   if as_base64 else vector)
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(count_tokens(i) if isinstance(i, str) else len(i) for i in items)
    return {"object": "list", "data": data, "model": _model(body),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def response_object(body: dict, digest: str) -> dict:
    """A completed Responses API object answering the request's input."""
    messages = _response_messages(body)
    text = answer_sentence(messages)
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    item = {"type": "message", "id": f"msg_sim_{digest}", "role": "assistant",
            "status": "completed", "content": [part]}
    input_tokens, output_tokens = _prompt_tokens(messages), count_tokens(text)
    return {
        "id": f"resp_sim_{digest}", "object": "response", "created_at": created_from(digest),
        "model": _model(body), "status": "completed", "error": None, "incomplete_details": None,
        "instructions": body.get("instructions"), "metadata": body.get("metadata") or {},
        "parallel_tool_calls": True, "temperature": body.get("temperature"),
        "tool_choice": "auto", "tools": [], "top_p": body.get("top_p"), "output": [item],
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                  "total_tokens": input_tokens + output_tokens,
                  "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens_details": {"reasoning_tokens": 0}},
    }


def response_events(body: dict, digest: str) -> list[dict]:
    """The Responses API stream for the request, in the order OpenAI sends its events."""
    done = response_object(body, digest)
    item = done["output"][0]
    part = item["content"][0]
    started = {**done, "status": "in_progress", "output": [], "usage": None}
    where = {"item_id": item["id"], "output_index": 0, "content_index": 0}
    events: list[dict] = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {**item, "status": "in_progress", "content": []}},
        {"type": "response.content_part.added", **where, "part": {**part, "text": ""}},
    ]
    events += [{"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []}
               for piece in _word_pieces(part["text"])]
    events += [
        {"type": "response.output_text.done", **where, "text": part["text"], "logprobs": []},
        {"type": "response.content_part.done", **where, "part": part},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": done},
    ]
    return [{**event, "sequence_number": number} for number, event in enumerate(events)]


def model_list() -> dict:
    return {"object": "list", "data": [
        {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "shadowtap"}
        for name in MODELS]}


def _messages(body: dict) -> list[dict]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) for m in messages):
        raise InvalidRequest("Missing required parameter: 'messages'.", "messages")
    return messages


def _question(messages: list[dict]) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    return _CONTEXT.sub(" ", text_of(users[-1].get("content"))) if users else ""


def _chosen_tool(body: dict) -> dict | None:
    functions = [t["function"] for t in body.get("tools") or []
                 if isinstance(t, dict) and isinstance(t.get("function"), dict)]
    choice = body.get("tool_choice", "auto")
    if not functions or choice == "none":
        return None
    wanted = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    return next((f for f in functions if f.get("name") == wanted), functions[0])


def _tool_answered(messages: list[dict]) -> bool:
    """True when a tool result follows the last user turn, so the model should now speak."""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    return any(m.get("role") == "tool" for m in messages[last_user + 1:])


def _resolve(root: dict, ref: str) -> dict:
    node: object = root
    for key in ref.removeprefix("#/").split("/") if ref.startswith("#/") else []:
        node = node.get(key, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def _response_messages(body: dict) -> list[dict]:
    raw = body.get("input")
    if isinstance(raw, str):
        items = [{"role": "user", "content": raw}]
    elif isinstance(raw, list) and all(isinstance(i, dict) for i in raw):
        items = [{"role": "tool", "content": i.get("output")}
                 if i.get("type") == "function_call_output" else i for i in raw]
    else:
        raise InvalidRequest("Missing required parameter: 'input'.", "input")
    instructions = body.get("instructions")
    return ([{"role": "system", "content": instructions}] if instructions else []) + items


def _prompt(body: dict) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        return "\n".join(prompt)
    if not isinstance(prompt, str):
        raise InvalidRequest("Missing required parameter: 'prompt'.", "prompt")
    return prompt


def _model(body: dict) -> str:
    model = body.get("model")
    return model if isinstance(model, str) else MODELS[0]


def _include_usage(body: dict) -> bool:
    return bool((body.get("stream_options") or {}).get("include_usage"))


def _prompt_tokens(messages: list[dict]) -> int:
    return sum(count_tokens(text_of(m.get("content"))) for m in messages)


def _usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def _word_pieces(text: str) -> list[str]:
    return _pieces(_WORD_BOUNDARY.split(text)) if text else []


def _pieces(parts: list[str]) -> list[str]:
    """Join consecutive parts so a stream has one part per chunk but never over MAX_CHUNKS."""
    size = max(1, math.ceil(len(parts) / MAX_CHUNKS))
    return ["".join(parts[i:i + size]) for i in range(0, len(parts), size)]


def _is_token_list(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(i, int) for i in value)


def _unit_vector(text: str, dimensions: int) -> list[float]:
    raw = hashlib.shake_256(text.encode()).digest(2 * dimensions)
    values = [(v - 32767.5) / 32767.5 for v in struct.unpack(f"<{dimensions}H", raw)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]
