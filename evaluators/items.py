"""EvalItems from the capture store: each exchange's primary answer, its twin and candidate answers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

import orjson

from shadowtap.core.config import ContextsConfig
from shadowtap.core.store.score_store import ScoreStore
from shadowtap.evaluators.base import PRIMARY, PRIMARY_TWIN, Answer, EvalItem
from shadowtap.evaluators.contexts import extract_contexts
from shadowtap.proxy.dialects import dialect_named


def parse_request(exchange: dict) -> dict | None:
    """The stored request body as a dict; None when it was unparseable or not a JSON object."""
    text = exchange.get("request_json")
    if not text:
        return None
    try:
        request = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return request if isinstance(request, dict) else None


def primary_answer(exchange: dict) -> Answer:
    return Answer(
        source=PRIMARY, text=exchange.get("response_text"), tool_calls=_tool_calls(exchange.get("response_tool_calls")),
        finish_reason=exchange.get("finish_reason"), status=exchange.get("status"),
        latency_ms=exchange.get("latency_ms"), ttft_ms=exchange.get("ttft_ms"),
        prompt_tokens=exchange.get("prompt_tokens"), completion_tokens=exchange.get("completion_tokens"),
        cost_usd=exchange.get("cost_usd"))


def shadow_answer(shadow: dict) -> Answer:
    """A candidate's (or the twin's, candidate "primary_twin") answer; shadows have no HTTP status."""
    return Answer(
        source=shadow["candidate"], text=shadow.get("response_text"),
        tool_calls=_tool_calls(shadow.get("response_tool_calls")),
        finish_reason=shadow.get("finish_reason"), latency_ms=shadow.get("latency_ms"),
        ttft_ms=shadow.get("ttft_ms"), prompt_tokens=shadow.get("prompt_tokens"),
        completion_tokens=shadow.get("completion_tokens"), cost_usd=shadow.get("cost_usd"))


def build_items(exchange: dict, shadows: Iterable[dict], contexts_config: ContextsConfig) -> dict[str, EvalItem]:
    """One EvalItem per answer source of this exchange, sharing the request and its contexts.

    `shadows` must be rows with outcome "ok"; other rows hold no answer.
    """
    request = parse_request(exchange)
    contexts = extract_contexts(request, exchange.get("shadowtap_metadata"), contexts_config,
                                dialect_named(exchange.get("endpoint")))
    primary = primary_answer(exchange)
    answers = [shadow_answer(row) for row in shadows]
    twin = next((answer for answer in answers if answer.source == PRIMARY_TWIN), None)
    items = {PRIMARY: EvalItem(exchange=exchange, request=request, contexts=contexts, answer=primary,
                               primary=primary, twin=twin)}
    for answer in answers:
        items[answer.source] = EvalItem(exchange=exchange, request=request, contexts=contexts, answer=answer,
                                        primary=primary, twin=twin)
    return items


def load_items(store: ScoreStore, exchange_ids: Sequence[str],
               contexts_config: ContextsConfig) -> Iterator[tuple[dict, dict[str, EvalItem] | Exception]]:
    """(exchange row, items by source) for these exchanges, oldest first, in two queries.

    An exchange whose items cannot be built yields the exception instead, so one odd capture never
    stops a run.
    """
    shadows: dict[str, list[dict]] = defaultdict(list)
    for row in store.answer_shadows(exchange_ids):
        shadows[row["exchange_id"]].append(row)
    for exchange in store.exchanges(exchange_ids):
        try:
            yield exchange, build_items(exchange, shadows.get(exchange["id"], ()), contexts_config)
        except Exception as exc:  # a malformed capture is reported per score, never fatal
            yield exchange, exc


def iter_items(store: ScoreStore, contexts_config: ContextsConfig, *, since: str | None = None,
               page_size: int = 500) -> Iterator[EvalItem]:
    """Every answer's EvalItem, oldest exchange first, reading the store a page at a time."""
    for page in store.iter_exchange_ids(since=since, page_size=page_size):
        for _, items in load_items(store, page, contexts_config):
            if not isinstance(items, Exception):
                yield from items.values()


class RuleSelectors(Protocol):
    """The selectors a config rule may set (`ContractRule`, `FreshnessPolicy`); "" matches anything."""

    @property
    def endpoint(self) -> str: ...
    @property
    def task(self) -> str: ...
    @property
    def tag(self) -> str: ...


def rule_matches(rule: RuleSelectors, exchange: dict) -> bool:
    """True when every selector a config rule sets (`endpoint`, `task`, `tag` NAME=VALUE) matches."""
    if rule.endpoint and rule.endpoint != exchange.get("endpoint"):
        return False
    if rule.task and rule.task != exchange.get("task"):
        return False
    if rule.tag:
        name, _, value = rule.tag.partition("=")
        return exchange_tags(exchange).get(name.strip().lower()) == value.strip()
    return True


def exchange_tags(exchange: dict) -> dict:
    """The exchange's x-shadowtap-* tags, {} when there are none."""
    try:
        tags = orjson.loads(exchange.get("tags") or "{}")
    except orjson.JSONDecodeError:
        return {}
    return tags if isinstance(tags, dict) else {}


def _tool_calls(text: str | None) -> list[dict] | None:
    if not text:
        return None
    try:
        calls = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(calls, list):
        return None
    return [call for call in calls if isinstance(call, dict)] or None
