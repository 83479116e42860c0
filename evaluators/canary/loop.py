"""GuardLoop: every [canary] guard_interval_s, evaluate each running canary and roll back the ones
with a red guard (share 0, status rolled_back, the guard and its window recorded), then tell the
webhook. A pass that fails (the store unreachable, say) is logged and the next one tries again: the
loop never stops on an error, and while it is down canaries keep their share."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from shadowtap.core.config import ShadowtapConfig
from shadowtap.core.store.canary_store import CanaryState, read_canary_states, set_canary_share
from shadowtap.core.timefmt import stored_time
from shadowtap.evaluators.canary.evaluate import evaluate_window
from shadowtap.evaluators.canary.quality_guards import QualityScores
from shadowtap.evaluators.canary.results import GuardResult
from shadowtap.evaluators.canary.webhook import post_event
from shadowtap.evaluators.canary.window import CanaryWindow, read_window

GUARD_ACTOR = "guard"   # changed_by of an automatic rollback
log = logging.getLogger("shadowtap.canary")


@dataclass(frozen=True)
class Rollback:
    candidate: str
    guard: GuardResult              # the first red guard
    red: list[GuardResult]
    state: CanaryState              # after the rollback
    window: dict                    # what was recorded in canary_events.window_json


class GuardLoop:
    def __init__(self, config: ShadowtapConfig, store: object, *,
                 post: Callable[[str, dict], bool] = post_event, reopen: Callable[[], object] | None = None) -> None:
        """`reopen` opens the store again after a failed pass (a PostgreSQL connection that broke)."""
        self.config = config
        self.store = store
        self._reopen = reopen
        self.scores = QualityScores(config)
        self._post = post
        self.last_results: dict[str, list[GuardResult]] = {}

    def run_once(self, now: float | None = None) -> list[Rollback]:
        now = time.time() if now is None else now
        states = read_canary_states(self.store)
        running = {name for name, state in states.items() if state.status == "running" and state.share > 0}
        rollbacks, seen = [], set()
        for name in sorted(running):
            window = read_window(self.store, name, window_s=self.config.canary.window_s, now=now)
            results = evaluate_window(window, self.config, self.scores, self.store, now)
            self.last_results[name] = results
            seen |= {row["id"] for row in window.served} | {row["id"] for row in window.baseline}
            red = [result for result in results if result.red]
            if red:
                rollbacks.append(self._roll_back(window, states[name], red, now))
        self.scores.forget(seen)
        return rollbacks

    def run(self, stop: threading.Event, should_continue: Callable[[], bool] = lambda: True) -> None:
        interval = self.config.canary.guard_interval_s
        log.info("canary guard loop running every %ss over a %ss window", interval, self.config.canary.window_s)
        while not stop.is_set() and should_continue():
            try:
                self.run_once()
            except Exception:  # the next pass tries again; canaries keep their share meanwhile
                log.exception("canary guard pass failed")
                self._open_again()
            stop.wait(interval)

    def _open_again(self) -> None:
        if self._reopen is None:
            return
        try:
            store = self._reopen()
        except Exception as exc:  # still unreachable: the next failed pass tries again
            log.warning("canary guard cannot reopen the store: %s", exc)
            return
        close = getattr(self.store, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # a broken connection may fail to close; it is dropped either way
                pass
        self.store = store

    def _roll_back(self, window: CanaryWindow, before: CanaryState, red: list[GuardResult], now: float) -> Rollback:
        first = red[0]
        record = {
            "since": window.since, "until": stored_time(now), "guard": first.name, "cohort": first.cohort,
            "value": first.value, "threshold": first.threshold, "samples": first.samples,
            "canaried": len(window.canaried), "served": len(window.served), "fallbacks": len(window.fallbacks),
            "share_before": before.share, "red": [result.as_dict() for result in red],
        }
        state = set_canary_share(self.store, window.candidate, 0.0, status="rolled_back", changed_by=GUARD_ACTOR,
                                 reason=first.describe(), guard=first.name, window=record)
        log.warning("canary %s rolled back by guard %s: %s", window.candidate, first.name, first.describe())
        if self.config.canary.webhook_url:
            self._post(self.config.canary.webhook_url, {
                "event": "canary_rollback", "candidate": window.candidate, "guard": first.name,
                "reason": first.describe(), "at": stored_time(now), "share_before": before.share, "window": record})
        return Rollback(window.candidate, first, red, state, record)
