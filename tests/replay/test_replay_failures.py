"""A replay whose calls fail is not complete: it exits 1 counting the failures by reason, computes no
consistency or sensitivity over them ("n/a (k errors)"), and resuming it makes the failed calls again."""

from __future__ import annotations

import re

import orjson
import pytest

from shadowtap.core.store.replay_store import ReplayStore
from shadowtap.evaluators.report.error_reasons import count_reasons, error_reason, stored_error_reason
from tests.support.replay_support import ScriptedModel, StoreBuilder, chat, cli_run, last_user, show

QUESTIONS = ["When does the museum open on Sundays?", "How far is the station from the old harbour?"]


def echo(body: dict) -> str:
    return last_user(body).lower()


@pytest.fixture
def builder(tmp_path):
    builder = StoreBuilder(tmp_path / "s.db")
    for i, question in enumerate(QUESTIONS):
        builder.exchange(f"ex-{i}", f"2026-11-20T10:0{i}:00.000000+00:00", chat(question), echo(chat(question)))
    return builder


def run_against(builder, base_url: str, *extra: str, expect: int):
    return cli_run("replay", "run", "--store", str(builder.path), "--target", "model:openai/target", "--api-base",
                   base_url, "-k", "2", "--perturb", "--timeout-s", "5", *extra, expect=expect)


def test_a_replay_whose_every_call_fails_exits_1_with_the_failures_counted_by_reason(builder):
    gone = ScriptedModel(echo)     # not started: nothing listens on its port, every call is refused
    result = run_against(builder, gone.base_url, expect=1)
    run_id = result.stdout.splitlines()[0]
    store = ReplayStore(builder.store)
    calls = len(store.call_outcomes(run_id))
    assert calls > 2 * len(QUESTIONS)          # the perturbations were sent too
    # One reason, counted: the error's class (litellm's choice) and the first sentence of its message.
    assert re.search(rf"{calls} of {calls} calls failed: {calls}× \w+: [^;]*Connection error\.;", result.stderr)
    assert ": complete;" not in result.stderr and store.get_run(run_id)["status"] == "incomplete"


def test_no_consistency_or_sensitivity_is_computed_over_failed_calls(builder):
    gone = ScriptedModel(echo)
    run_id = run_against(builder, gone.base_url, expect=1).stdout.splitlines()[0]
    shown = show(builder.path, run_id)
    overall = shown["overall"]
    assert overall["sensitivity"] is None and overall["outcome_consistency"] is None
    assert overall["answer_consistency"] is None and overall["failed_calls"] == overall["calls"] > 0
    assert all("sensitivity" not in figures for figures in shown["exchanges"])
    text = cli_run("replay", "show", run_id, "--store", str(builder.path)).stdout
    assert f"outcome consistency n/a ({overall['errors']} errors)" in text
    assert f"perturbation sensitivity n/a ({overall['failed_calls']} errors)" in text
    markdown = cli_run("replay", "show", run_id, "--store", str(builder.path), "--markdown").stdout
    assert f"| sensitivity | n/a ({overall['failed_calls']} errors) |" in markdown
    page = builder.path.parent / "run.html"
    cli_run("replay", "show", run_id, "--store", str(builder.path), "--html", str(page))
    assert f"<td>perturbation sensitivity</td><td>n/a ({overall['failed_calls']} errors)</td>" in page.read_text()


def test_resuming_a_run_whose_calls_failed_makes_them_again_and_completes_it(builder):
    target = ScriptedModel(echo)
    run_id = run_against(builder, target.base_url, expect=1).stdout.splitlines()[0]
    store = ReplayStore(builder.store)
    failed = len(store.call_outcomes(run_id))
    with target:                               # the target is back, on the same port
        result = cli_run("replay", "resume", run_id, "--store", str(builder.path))
        assert len(target.requests) == failed
    assert "calls failed" not in result.stderr and store.get_run(run_id)["status"] == "complete"
    overall = show(builder.path, run_id)["overall"]
    assert overall["failed_calls"] == 0 and overall["outcome_consistency"] == 1.0
    assert overall["sensitivity"] is not None


def test_a_partly_failed_exchange_has_no_consistency_and_the_overall_leaves_it_out(builder):
    flaky_questions = {QUESTIONS[0]}

    def flaky(body: dict) -> str:
        if last_user(body) in flaky_questions:
            flaky_questions.discard(last_user(body))   # the first call for it fails, later ones answer
            raise RuntimeError("scripted failure")
        return echo(body)

    with FailingOnce(flaky) as target:
        result = cli_run("replay", "run", "--store", str(builder.path), "--target", "model:openai/target",
                         "--api-base", target.base_url, "-k", "2", "--concurrency", "1", expect=1)
    shown = show(builder.path, result.stdout.splitlines()[0])
    first, second = shown["exchanges"]
    assert first["errors"] == 1 and first["outcome_consistency"] is None and first["answer_consistency"] is None
    assert second["errors"] == 0 and second["outcome_consistency"] == 1.0
    assert shown["overall"]["outcome_consistency"] == 1.0
    text = cli_run("replay", "show", shown["run"]["id"], "--store", str(builder.path)).stdout
    assert "outcome consistency 1.000 (1 error left out)" in text


class FailingOnce(ScriptedModel):
    """A scripted model that answers 500 when `answer_for` raises."""

    async def _respond(self, writer, stream: bool) -> bool:
        try:
            self.answer_for(self.requests[-1]["body"])
        except RuntimeError:
            payload = orjson.dumps({"error": {"message": "scripted failure", "type": "server_error"}})
            writer.write(b"HTTP/1.1 500 Failure\r\ncontent-type: application/json\r\ncontent-length: "
                         + str(len(payload)).encode() + b"\r\n\r\n" + payload)
            await writer.drain()
            return True
        return await super()._respond(writer, stream)


def test_error_reasons_keep_the_class_and_first_sentence_and_count_most_frequent_first():
    reason = error_reason("APIConnectionError", "litellm.APIConnectionError: APIConnectionError: OpenAIException - "
                                                "Connection error. Retry later.\nTraceback ...")
    assert reason == "APIConnectionError: OpenAIException - Connection error."
    assert stored_error_reason("TimeoutError: no complete answer within 2s", "timeout") == \
        "TimeoutError: no complete answer within 2s"
    assert stored_error_reason(None, "timeout") == "timeout"
    assert list(count_reasons(["b", "a", "b", "c", "a", "b"]).items()) == [("b", 3), ("a", 2), ("c", 1)]
