"""The evaluator contract: what an evaluator sees, and the three things it may return.

An evaluator scores one answer (the primary's, a candidate's, or the primary's twin) of one
captured exchange. It returns a `Score` in [0, 1], or `NotApplicable` with a reason; if it
raises, the runner records that as this evaluator's error and carries on. Those three outcomes
are never confused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from shadowtap.core.config import ShadowtapConfig

PRIMARY = "primary"
PRIMARY_TWIN = "primary_twin"


@dataclass(frozen=True)
class ContextItem:
    """One piece of retrieved context the answer should be grounded in."""

    text: str
    id: str | None = None
    source: str | None = None
    updated_at: str | None = None   # ISO 8601, as the app sent it
    version: str | None = None
    origin: str = "shadowtap_field"  # shadowtap_field | tool_message | delimited


@dataclass(frozen=True)
class Answer:
    """One answer to the exchange's request, normalised."""

    source: str                      # "primary", "primary_twin", or a candidate name
    text: str | None
    tool_calls: list[dict] | None = None
    finish_reason: str | None = None
    status: int | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None


@dataclass(frozen=True)
class EvalItem:
    """Everything an evaluator may look at for one answer of one exchange."""

    exchange: dict[str, Any]         # the `exchanges` row
    request: dict[str, Any] | None   # parsed request body (None when unparseable)
    contexts: list[ContextItem]
    answer: Answer                   # the answer being scored
    primary: Answer                  # the primary's answer (the same object when scoring it)
    twin: Answer | None = None       # the primary's second answer, where one was sampled

    @property
    def is_primary(self) -> bool:
        return self.answer.source == PRIMARY


@dataclass(frozen=True)
class Score:
    value: float                     # in [0, 1]; higher is better
    label: str                       # short verdict: "grounded", "stale", "invalid", ...
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.value <= 1.0:
            raise ValueError(f"score value {self.value!r} is outside [0, 1]")


@dataclass(frozen=True)
class NotApplicable:
    reason: str


@runtime_checkable
class Evaluator(Protocol):
    name: ClassVar[str]
    version: ClassVar[str]           # bump when scores change meaning; older scores are redone
    needs_judge: ClassVar[bool]      # True when scoring calls a judge model (costs money)

    @classmethod
    def from_config(cls, config: ShadowtapConfig, *, config_dir: Path) -> Evaluator:
        """Build from the typed config; `config_dir` resolves relative file paths in it."""
        ...

    def applies(self, item: EvalItem) -> bool: ...

    async def score(self, item: EvalItem) -> Score | NotApplicable: ...
