"""Price an exchange in USD from litellm's bundled price table, without importing litellm.

Importing litellm costs seconds of CPU; its price table is a plain JSON file we can read directly.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import re
from pathlib import Path

import orjson

logger = logging.getLogger(__name__)

_REMEMBERED_MODELS = 1024

LITELLM_PRICES_FILE = "model_prices_and_context_window_backup.json"

# Release-date suffixes: -2024-07-18, -20240620, -0613.
_DATED_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|(?:0[1-9]|1[0-2])\d{2})$")


class PriceTable:
    """Per-token prices keyed by model name, in litellm's format."""

    def __init__(self, prices: dict[str, dict]) -> None:
        self._prices = {
            name: entry
            for name, entry in prices.items()
            if name != "sample_spec" and isinstance(entry, dict)
        }
        self._entries: dict[str, dict | None] = {}  # model name as asked -> its entry, found once

    @classmethod
    def from_litellm_package(cls) -> PriceTable:
        """The table litellm ships; empty (with a warning) if litellm or its file is missing."""
        return cls(_litellm_prices())

    def __len__(self) -> int:
        return len(self._prices)

    def cost_usd(
        self, model: str | None, prompt_tokens: int | None, completion_tokens: int | None
    ) -> float | None:
        """Input plus output token cost, or None when the model or a token count is unknown."""
        if model is None or prompt_tokens is None or completion_tokens is None:
            return None
        entry = self._entry_for(model)
        if entry is None:
            return None
        input_rate = _rate(entry, "input_cost_per_token", prompt_tokens)
        output_rate = _rate(entry, "output_cost_per_token", completion_tokens)
        if input_rate is None or output_rate is None:
            return None
        return input_rate * prompt_tokens + output_rate * completion_tokens

    def usage_cost_usd(self, model: str | None, usage: dict | None) -> float | None:
        """The cost of a normalised usage (see AssembledResponse.usage): prompt tokens written to
        or read from a prompt cache are priced at the model's cache rates (input rate when the
        table has none), the rest of the prompt at its input rate."""
        usage = usage or {}
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        written, read = usage.get("cache_creation_tokens") or 0, usage.get("cache_read_tokens") or 0
        base = self.cost_usd(model, prompt, completion)
        if base is None or not (written or read) or model is None:
            return base
        entry = self._entry_for(model) or {}
        input_rate = _rate(entry, "input_cost_per_token", 1) or 0.0
        write_rate = _rate(entry, "cache_creation_input_token_cost", 1)
        read_rate = _rate(entry, "cache_read_input_token_cost", 1)
        # cost_usd billed every prompt token at the input rate; re-bill the cached ones.
        return (base + written * ((input_rate if write_rate is None else write_rate) - input_rate)
                + read * ((input_rate if read_rate is None else read_rate) - input_rate))

    def _entry_for(self, model: str) -> dict | None:
        if model in self._entries:
            return self._entries[model]
        found = None
        for name in _candidate_names(model):
            found = self._prices.get(name)
            if found is not None:
                break
        if len(self._entries) >= _REMEMBERED_MODELS:  # model names come from requests: keep it bounded
            self._entries.clear()
        self._entries[model] = found
        return found


def _candidate_names(model: str) -> list[str]:
    """The model as given, then shorn of provider prefixes, then of a release-date suffix."""
    names = [model]
    while "/" in names[-1]:  # "openrouter/openai/gpt-4o" -> "openai/gpt-4o" -> "gpt-4o"
        names.append(names[-1].split("/", 1)[1])
    undated = [_DATED_SUFFIX.sub("", name) for name in names]
    return names + [name for name in undated if name not in names]


def _rate(entry: dict, key: str, tokens: int) -> float | None:
    rate = entry.get(key)
    if isinstance(rate, (int, float)) and not isinstance(rate, bool):
        return float(rate)
    # A price the table omits only matters if tokens of that kind were used (embeddings).
    return 0.0 if tokens == 0 else None


@functools.cache
def _litellm_prices() -> dict[str, dict]:
    path = _litellm_prices_path()
    if path is None:
        logger.warning("litellm is not installed; costs will not be computed")
        return {}
    try:
        prices = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        logger.warning("cannot read litellm's price table %s (%s); costs will not be computed", path, exc)
        return {}
    return prices if isinstance(prices, dict) else {}


def _litellm_prices_path() -> Path | None:
    # find_spec locates the package without running litellm/__init__.py.
    try:
        spec = importlib.util.find_spec("litellm")
    except (ImportError, ValueError):  # ValueError: a stub litellm in sys.modules has no spec
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0]) / LITELLM_PRICES_FILE
