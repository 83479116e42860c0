"""Paraphrase perturbations: a configured model rewrites the last user message, and the rewrite is
replayed like any other perturbation.

The writer is called through litellm like a replay target (its own api_base and key env var,
never the client's key or the target's; no retries; a total deadline), at temperature 0 with a
seed, so the same exchange tends to get the same paraphrases. Paraphrase n of an exchange is
asked for once per run: the call is stored as a result row with repetition -1 (its text, tokens
and cost), which a resumed run reads back instead of asking again, and which `replay show` prints.
"""

from __future__ import annotations

from dataclasses import dataclass

from shadowtap.proxy.dialects import OTHER, Dialect
from shadowtap.replay.targets import ReplayTarget

_PREFIX = "paraphrase-"
_MIN_MAX_TOKENS = 256

INSTRUCTIONS = (
    "You rewrite a user's message for a prompt-robustness test. Write variant {n} of {count}: the same "
    "request in different words, with the same meaning, language, tone and level of detail, and "
    "nothing added or left out. Keep code, numbers, names, quoted passages and any <context> or "
    "<document> blocks exactly as they are. Reply with the rewritten message only.")


def paraphrase_name(n: int) -> str:
    """The perturbation name of paraphrase n (1-based): "paraphrase-1"."""
    return f"{_PREFIX}{n}"


def paraphrase_number(perturbation: str | None) -> int | None:
    """n for "paraphrase-n", else None."""
    if perturbation and perturbation.startswith(_PREFIX) and perturbation[len(_PREFIX):].isdigit():
        return int(perturbation[len(_PREFIX):])
    return None


@dataclass(frozen=True)
class ParaphraseSettings:
    """How many paraphrases each exchange gets, and the model that writes them; recorded with the run."""

    writer: ReplayTarget
    count: int

    def to_json(self) -> dict:
        return {"writer": self.writer.to_json(), "count": self.count}

    @classmethod
    def from_json(cls, data: dict | None) -> ParaphraseSettings | None:
        if not data:
            return None
        return cls(ReplayTarget.from_json(data["writer"]), int(data["count"]))

    def names(self) -> list[str]:
        return [paraphrase_name(n) for n in range(1, self.count + 1)]


def last_user_text(request: dict | None, dialect: Dialect = OTHER) -> str | None:
    """The text a paraphrase replaces: the last user message's content, when it is one piece of
    text, as the request's dialect reads it (OTHER reads chat, Anthropic and Responses turns)."""
    return dialect.last_user_text(request) if isinstance(request, dict) else None


def with_paraphrase(request: dict, text: str, dialect: Dialect = OTHER) -> dict:
    """A deep copy of `request` whose last user message says `text` instead.

    Only for a request `last_user_text` found text in; ValueError for one with no user message.
    """
    return dialect.with_user_text(request, text)


def writing_request(text: str, n: int, count: int) -> dict:
    """The chat request that asks the writer for paraphrase n of `text`."""
    return {"messages": [{"role": "system", "content": INSTRUCTIONS.format(n=n, count=count)},
                         {"role": "user", "content": text}],
            "temperature": 0, "seed": n, "max_tokens": max(_MIN_MAX_TOKENS, len(text) // 2)}


def cleaned(answer: str | None) -> str | None:
    """The writer's answer as a user message, or None when it wrote nothing usable."""
    text = (answer or "").strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text or None
