"""EvalRunner: incremental, error-tolerant, filtered, concurrent within limits; dry runs write nothing."""

import asyncio
import time
from datetime import UTC, datetime

import pytest

from shadowtap.core.config import ContextsConfig
from shadowtap.core.store import CaptureStore
from shadowtap.core.store.score_store import ScoreStore
from shadowtap.evaluators.base import EvalItem
from shadowtap.evaluators.contract import ContractEvaluator
from shadowtap.evaluators.freshness import FreshnessEvaluator
from shadowtap.evaluators.runner import EvalRunner, EvalSelection, scrub_secrets
from tests.support.eval_support import (
    BrokenEvaluator,
    FlakyEvaluator,
    JudgeEvaluator,
    LengthEvaluator,
    LengthEvaluatorV2,
    add_exchanges,
    add_shadow,
)


@pytest.fixture
def store(tmp_path):
    capture = CaptureStore.open(tmp_path / "s.db")
    yield capture
    capture.close()


@pytest.fixture
def exchanges(store):
    """Six exchanges a second apart; the first two have a candidate answer and a twin."""
    add_exchanges(store, 6, started_at=time.time() - 600)
    rows = list(store.iter_exchanges())
    for row in rows[:2]:
        add_shadow(store, row["id"], "small")
        add_shadow(store, row["id"], "primary_twin", text="hello")
    add_shadow(store, rows[2]["id"], "small", outcome="error")
    return rows


def runner_for(store, *evaluators, **options):
    options.setdefault("batch_size", 3)
    return EvalRunner(ScoreStore(store), list(evaluators), contexts=ContextsConfig(), **options)


def run(runner, selection=EvalSelection()):
    return asyncio.run(runner.run(selection))


def stored(store, **where):
    return ScoreStore(store).scores(**where)


def test_every_answer_is_scored_when_the_store_is_new(store, exchanges):
    report = run(runner_for(store, LengthEvaluator()))
    assert (report.pending, report.total("score")) == (10, 10)   # 6 primaries, 2 candidates, 2 twins
    assert {(row["source"], row["label"]) for row in stored(store)} == {
        ("primary", "has_text"), ("small", "has_text"), ("primary_twin", "has_text")}


def test_second_run_scores_nothing_new_when_nothing_changed(store, exchanges):
    run(runner_for(store, LengthEvaluator()))
    first = {row["id"]: row["scored_at"] for row in stored(store)}
    LengthEvaluator.calls = 0
    report = run(runner_for(store, LengthEvaluator()))
    assert (report.pending, report.total("score"), LengthEvaluator.calls) == (0, 0, 0)
    assert {row["id"]: row["scored_at"] for row in stored(store)} == first


def test_new_answers_are_scored_when_they_arrive_after_a_run(store, exchanges):
    run(runner_for(store, LengthEvaluator()))
    add_shadow(store, exchanges[3]["id"], "small")
    report = run(runner_for(store, LengthEvaluator()))
    assert report.total("score") == 1


def test_raising_evaluator_is_recorded_as_error_while_others_continue(store, exchanges):
    report = run(runner_for(store, BrokenEvaluator(), LengthEvaluator()))
    assert report.outcomes["broken"]["error"] == 10 and report.outcomes["length"]["score"] == 10
    errors = stored(store, evaluator="broken")
    assert {row["outcome"] for row in errors} == {"error"}
    assert errors[0]["error"] == "RuntimeError: judge said 401 for Bearer [secret]"
    assert (errors[0]["value"], errors[0]["label"]) == (None, None)
    assert report.failed_evaluators() == ["broken"]


def test_an_evaluator_failing_on_some_answers_is_not_counted_as_broken_when_others_succeed(store, exchanges):
    report = run(runner_for(store, FlakyEvaluator()))
    assert (report.total("score"), report.total("error")) == (8, 2)
    assert report.failed_evaluators() == []
    assert report.first_errors == {"flaky": "ValueError: cannot score a twin"}


def test_errors_are_retried_only_after_a_version_bump_when_rerun(store, exchanges):
    run(runner_for(store, BrokenEvaluator()))
    assert run(runner_for(store, BrokenEvaluator())).pending == 0


def test_version_bump_rescores_every_answer_when_the_evaluator_changes(store, exchanges):
    run(runner_for(store, LengthEvaluator()))
    report = run(runner_for(store, LengthEvaluatorV2()))
    assert report.total("score") == 10
    assert {row["evaluator_version"] for row in stored(store)} == {"2"}
    assert len(stored(store)) == 10


def test_not_applicable_is_stored_with_its_reason_when_an_evaluator_does_not_apply(store, exchanges):
    run(runner_for(store, FreshnessEvaluator()))
    rows = stored(store, source="primary")
    assert {row["outcome"] for row in rows} == {"not_applicable"}
    assert rows[0]["details"] == {"reason": "freshness does not apply to this answer"}


@pytest.mark.parametrize("selection, expected", [
    (EvalSelection(source="small"), {("small", 2)}),
    (EvalSelection(source="primary"), {("primary", 6)}),
    (EvalSelection(limit=2), {("primary", 2), ("small", 2), ("primary_twin", 2)}),
    (EvalSelection(limit=4), {("primary", 4), ("small", 2), ("primary_twin", 2)}),
])
def test_filters_select_the_answers_scored_when_given(store, exchanges, selection, expected):
    runner = runner_for(store, LengthEvaluator())
    assert runner.count_pending(selection) == sum(count for _, count in expected)
    run(runner, selection)
    sources = [row["source"] for row in stored(store)]
    assert {(source, sources.count(source)) for source in set(sources)} == expected


def test_since_selects_exchanges_at_or_after_the_time_when_given(store, exchanges):
    since = exchanges[4]["started_at"]
    run(runner_for(store, LengthEvaluator()), EvalSelection(since=since))
    assert sorted(row["exchange_id"] for row in stored(store)) == sorted(row["id"] for row in exchanges[4:])


def test_limit_moves_on_to_the_next_exchanges_when_run_again(store, exchanges):
    for _ in range(3):
        run(runner_for(store, LengthEvaluator()), EvalSelection(source="primary", limit=2))
    assert len(stored(store)) == 6


def test_dry_run_counts_pending_scores_and_judge_calls_and_writes_nothing(store, exchanges):
    runner = runner_for(store, LengthEvaluator(), JudgeEvaluator())
    plan = runner.plan(EvalSelection())
    assert plan.exchanges == 6
    assert plan.pending[("judged", "primary")] == 6 and sum(plan.pending.values()) == 20
    assert plan.judge_calls["judged"] == 20          # 10 answers, two judge calls each
    assert plan.cost_usd["judged"] == pytest.approx(0.01)
    assert stored(store) == []


def test_dry_run_says_the_cost_is_unknown_when_the_evaluator_cannot_estimate(store, exchanges, monkeypatch):
    monkeypatch.delattr(JudgeEvaluator, "estimate_cost_usd")
    plan = runner_for(store, JudgeEvaluator()).plan(EvalSelection(source="small"))
    assert (plan.judge_calls["judged"], plan.cost_unknown["judged"], plan.cost_usd.get("judged", 0)) == (4, 2, 0)


def test_judge_evaluators_respect_their_own_concurrency_limit_when_scoring(store, exchanges):
    JudgeEvaluator.peak = 0
    run(runner_for(store, JudgeEvaluator(), max_concurrency=8, judge_concurrency=2))
    assert JudgeEvaluator.peak == 2


def test_scores_are_committed_in_batches_while_the_run_goes_on(store, exchanges):
    writes = []
    scores = ScoreStore(store)
    original = scores.write
    scores.write = lambda rows: (writes.append(len(rows)), original(rows))
    runner = EvalRunner(scores, [LengthEvaluator()], contexts=ContextsConfig(), batch_size=4, max_concurrency=1)
    run(runner)
    assert writes == [4, 4, 2]


def test_the_evaluator_sees_the_primary_twin_and_candidate_answers_when_scoring(store, exchanges):
    seen: list[EvalItem] = []

    class Recording(LengthEvaluator):
        async def score(self, item):
            seen.append(item)
            return await super().score(item)

    run(runner_for(store, Recording()), EvalSelection(limit=1))
    by_source = {item.answer.source: item for item in seen}
    assert set(by_source) == {"primary", "small", "primary_twin"}
    candidate = by_source["small"]
    assert candidate.answer.text == "hello from a candidate" and candidate.primary.text == "hello"
    assert candidate.twin.source == "primary_twin" and candidate.request["model"] == "gpt-4o-mini"
    assert candidate.primary.status == 200 and candidate.answer.latency_ms == 12.0


def test_contract_and_freshness_run_side_by_side_when_both_are_selected(store, exchanges):
    report = run(runner_for(store, ContractEvaluator(), FreshnessEvaluator()))
    assert report.total("not_applicable") == 20 and report.total("error") == 0


def test_secrets_are_scrubbed_from_error_messages_when_recorded():
    message = 'bad key sk-abcdef123456789 with header Authorization: Bearer xyz and api_key="hunter22hunter"'
    scrubbed = scrub_secrets(message, ["my-configured-secret"])
    assert "abcdef123456789" not in scrubbed and "xyz" not in scrubbed and "hunter22" not in scrubbed
    assert scrub_secrets("token my-configured-secret leaked", ["my-configured-secret"]) == "token [secret] leaked"


def test_scored_at_is_utc_iso_when_written(store, exchanges):
    run(runner_for(store, LengthEvaluator()), EvalSelection(limit=1))
    moment = datetime.fromisoformat(stored(store)[0]["scored_at"])
    assert moment.tzinfo == UTC


def test_progress_callbacks_get_the_total_and_every_row_when_given(store, exchanges):
    totals, rows = [], []
    asyncio.run(runner_for(store, LengthEvaluator()).run(EvalSelection(), on_start=totals.append,
                                                         on_scored=rows.append))
    assert totals == [10] and len(rows) == 10


def test_an_exception_in_applies_is_recorded_as_that_evaluators_error_when_deciding(store, exchanges):
    class Picky(LengthEvaluator):
        name = "picky"

        def applies(self, item):
            raise KeyError("request")

    report = run(runner_for(store, Picky(), LengthEvaluator()))
    assert report.first_errors == {"picky": "KeyError: 'request'"}
    assert report.outcomes["length"]["score"] == 10
