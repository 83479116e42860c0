"""Which of a run's model calls failed, and why: a run with failed calls is not complete, and no
figure is computed over its failures."""

from __future__ import annotations

from shadowtap.core.store.replay_store import ReplayStore
from shadowtap.evaluators.report.error_reasons import count_reasons, stored_error_reason

FAILED_OUTCOMES = ("error", "timeout")


def call_failures(store: ReplayStore, run_id: str) -> tuple[int, dict[str, int]]:
    """(model calls stored for the run, why the failed ones failed -> count, most frequent first)."""
    outcomes = store.call_outcomes(run_id)
    return len(outcomes), count_reasons(stored_error_reason(error, outcome) for outcome, error in outcomes
                                        if outcome in FAILED_OUTCOMES)


def not_measured(errors: int) -> str:
    """What a figure shows in place of a value it will not compute over failed calls."""
    return f"n/a ({errors} error{'s' if errors != 1 else ''})"
