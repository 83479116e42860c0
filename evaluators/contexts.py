"""Retrieved context for an exchange: from the request's `shadowtap` field, else from its messages.

The `shadowtap` field wins when it names contexts at all (even an empty list: the app said there
were none). Otherwise `[contexts]` extractors read tool results, Anthropic `document` blocks and
tagged or delimited text out of what the request's dialect says the model was given
(`Dialect.request_parts`: chat `messages`, Responses `input`/`instructions`, Anthropic `system`
and content blocks, a completions `prompt`).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from functools import lru_cache

import orjson

from shadowtap.core.config import ContextsConfig
from shadowtap.evaluators.base import ContextItem
from shadowtap.proxy.dialects import OTHER, Dialect
from shadowtap.proxy.dialects.conversation import content_text

__all__ = ["content_text", "contexts_from_metadata", "contexts_from_request", "delimited_contexts",
           "extract_contexts"]

_METADATA_KEYS = ("contexts", "context", "retrieved_contexts")
_ATTRIBUTE = re.compile(r"""([A-Za-z_][\w:.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
# Attribute spellings that mean the same ContextItem field.
_ATTRIBUTE_FIELDS = {"id": "id", "doc_id": "id", "source": "source", "src": "source", "version": "version",
                     "updated_at": "updated_at", "updated": "updated_at", "last_modified": "updated_at",
                     "date": "updated_at"}


def extract_contexts(request: dict | None, metadata: object, config: ContextsConfig,
                     dialect: Dialect = OTHER) -> list[ContextItem]:
    """Contexts from `metadata` (the stored `shadowtap` field, JSON text or parsed) or else the
    request, read by its dialect (OTHER, the default, reads every shape shadowtap knows)."""
    if isinstance(metadata, (str, bytes)):
        try:
            metadata = orjson.loads(metadata)
        except orjson.JSONDecodeError:
            metadata = None
    explicit = contexts_from_metadata(metadata)
    if explicit is not None:
        return explicit
    return contexts_from_request(request, config, dialect) if isinstance(request, dict) else []


def contexts_from_metadata(metadata: object) -> list[ContextItem] | None:
    """Items from a `shadowtap` field: `{"contexts": [...]}`, `{"context": ...}` or a bare list.

    None when the field names no contexts, so the caller falls back to the messages.
    """
    if isinstance(metadata, dict):
        key = next((key for key in _METADATA_KEYS if key in metadata), None)
        if key is None:
            return None
        metadata = metadata[key]
    elif not isinstance(metadata, list):
        return None
    values = metadata if isinstance(metadata, list) else [metadata]
    return [item for item in map(_item_from_value, values) if item is not None]


def _item_from_value(value: object) -> ContextItem | None:
    if isinstance(value, str):
        return ContextItem(text=value) if value.strip() else None
    if not isinstance(value, dict):
        return None
    text = value.get("text", value.get("content", value.get("page_content")))
    if not isinstance(text, str) or not text.strip():
        return None
    return ContextItem(text=text, id=_optional_str(value.get("id")), source=_optional_str(value.get("source")),
                       updated_at=_timestamp(value.get("updated_at")), version=_optional_str(value.get("version")))


def contexts_from_request(request: dict, config: ContextsConfig, dialect: Dialect = OTHER) -> list[ContextItem]:
    """Tool results, documents and tagged or delimited passages, in the order the request gives them."""
    found: list[ContextItem] = []
    for part in dialect.request_parts(request):
        if part.kind == "tool":
            if config.tool_messages and part.text.strip():
                found.append(ContextItem(text=part.text.strip(), id=part.ref, origin="tool_message"))
        elif part.kind == "document":
            if part.text.strip():
                found.append(ContextItem(text=part.text.strip(), id=part.ref, source="document", origin="document"))
        else:
            found.extend(delimited_contexts(part.text, config))
    return found


def delimited_contexts(text: str, config: ContextsConfig) -> list[ContextItem]:
    """Passages inside configured tags (with their attributes) or delimiter pairs.

    When passages nest (`<context><document>…</document></context>`), only the innermost count,
    so a wrapper never duplicates the documents it holds.
    """
    matches: list[tuple[int, int, str, ContextItem]] = []
    tag_pattern, delimiter_patterns = _patterns(tuple(config.tags), tuple(map(tuple, config.delimiters)))
    if tag_pattern is not None:
        for match in tag_pattern.finditer(text):
            matches.append((match.start(), match.end(), match.group(3), _tagged_item(match.group(2), match.group(3))))
    for pattern in delimiter_patterns:
        for match in pattern.finditer(text):
            item = ContextItem(text=match.group(1).strip(), origin="delimited")
            matches.append((match.start(), match.end(), match.group(1), item))
    outermost = {(start, end): (start, body, item) for start, end, body, item in matches
                 if not any(o_start <= start and end <= o_end and (o_start, o_end) != (start, end)
                            for o_start, o_end, _, _ in matches)}
    items: list[ContextItem] = []
    for _, body, item in sorted(outermost.values(), key=lambda match: match[0]):
        items.extend(delimited_contexts(body, config) or [item])
    return [item for item in items if item.text]


@lru_cache(maxsize=32)
def _patterns(tags: tuple[str, ...], delimiters: tuple[tuple[str, ...], ...]) -> tuple[re.Pattern | None, list]:
    tag_pattern = None
    if tags:
        names = "|".join(re.escape(tag) for tag in tags)
        tag_pattern = re.compile(rf"<({names})\b([^>]*)>(.*?)</\1\s*>", re.IGNORECASE | re.DOTALL)
    delimiter_patterns = [re.compile(re.escape(opening) + r"(.*?)" + re.escape(closing), re.DOTALL)
                          for opening, closing in delimiters]
    return tag_pattern, delimiter_patterns


def _tagged_item(attributes: str, body: str) -> ContextItem:
    fields: dict[str, str] = {}
    for match in _ATTRIBUTE.finditer(attributes):
        name = _ATTRIBUTE_FIELDS.get(match.group(1).lower())
        if name and name not in fields:
            value = next(group for group in match.groups()[1:] if group is not None)
            fields[name] = html.unescape(value)
    updated_at = _timestamp(fields.pop("updated_at", None))
    return ContextItem(text=body.strip(), updated_at=updated_at, origin="delimited", **fields)


def _timestamp(value: object) -> str | None:
    """ISO text as sent; epoch seconds (a number) become ISO 8601 UTC."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value, UTC).isoformat()
        except (OverflowError, OSError, ValueError):
            return None
    return value if isinstance(value, str) and value.strip() else None


def _optional_str(value: object) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def _list(value: object) -> list:
    return value if isinstance(value, list) else []
