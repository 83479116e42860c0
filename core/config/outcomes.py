"""Config section [outcomes]: what counts as a trusted task completion, and how outcomes are sliced."""

from __future__ import annotations

from dataclasses import dataclass

from shadowtap.core.config.checks import check_range
from shadowtap.core.errors import ConfigError

OUTCOME_WINDOWS = ("day", "week")
OUTCOME_DIMENSIONS = ("task", "label", "endpoint", "risk_tier")


@dataclass(frozen=True)
class OutcomesConfig:
    heavy_correction_minutes: float = 10.0   # an edit taking more minutes than this is a heavy correction
    heavy_correction_ratio: float = 0.3      # so is an edit ratio (edit distance / longer text) above this
    max_latency_ms: float = 0.0              # latency budget of a trusted completion; 0: no budget
    max_cost_usd: float = 0.0                # cost budget per exchange; 0: no budget
    window: str = "week"                     # trend windows: day | week (UTC, weeks start on Monday)
    category: str = "task"                   # task | label | endpoint | risk_tier | tag:NAME
    falling_kappa_drop: float = 0.2          # kappa this much lower in the last window than the first: falling
    falling_min_items: int = 10              # items judged by 2+ reviewers a window needs to count for that

    def validate(self) -> None:
        check_range("[outcomes] heavy_correction_minutes", self.heavy_correction_minutes, 0)
        check_range("[outcomes] heavy_correction_ratio", self.heavy_correction_ratio, 0, 1)
        check_range("[outcomes] max_latency_ms", self.max_latency_ms, 0)
        check_range("[outcomes] max_cost_usd", self.max_cost_usd, 0)
        if self.window not in OUTCOME_WINDOWS:
            raise ConfigError(f"[outcomes] window = {self.window!r}: expected one of {', '.join(OUTCOME_WINDOWS)}")
        if self.category not in OUTCOME_DIMENSIONS and not (
                self.category.startswith("tag:") and len(self.category) > len("tag:")):
            raise ConfigError(f"[outcomes] category = {self.category!r}: expected one of "
                              f"{', '.join(OUTCOME_DIMENSIONS)} or tag:NAME")
        check_range("[outcomes] falling_kappa_drop", self.falling_kappa_drop, 0, 2)
        check_range("[outcomes] falling_min_items", self.falling_min_items, 1)
