"""Paraphrase perturbations: a configured model on loopback writes them, once per exchange and number,
with its own key; they are replayed, stored, shown, counted in the budget and never asked for twice."""

from __future__ import annotations

import orjson
import pytest

from shadowtap.core.store.replay_store import ReplayStore
from shadowtap.replay.paraphrase import cleaned, last_user_text, paraphrase_number, with_paraphrase, writing_request
from tests.support.replay_support import (
    ScriptedModel,
    StoreBuilder,
    chat,
    cli_run,
    last_user,
    litellm_price,
    replay,
    show,
)

WRITER_KEY, TARGET_KEY = "sk-paraphrase-writer-own-key", "sk-replay-target-own-key"
QUESTIONS = ["When does the museum open on Sundays?", "how far is the station from the old harbour",
             "Which trains go to Lyon after nine?"]


def write_paraphrase(text: str, n: int) -> str:
    """The fake writer: 1 rewords, 2 only changes case, 3 gives the message back unchanged."""
    return {1: f"Please tell me: {text}", 2: text.upper(), 3: text}[n]


def writer_answer(body: dict) -> str:
    return write_paraphrase(last_user(body), body["seed"])


def echo(body: dict) -> str:
    """The fake target answers with the last user message, lower-cased: case changes go unnoticed."""
    return last_user(body).lower()


@pytest.fixture
def captured(tmp_path, monkeypatch):
    """Three exchanges whose captured answers are what the echo target answers to them."""
    monkeypatch.setenv("REPLAY_TEST_WRITER_KEY", WRITER_KEY)
    monkeypatch.setenv("REPLAY_TEST_TARGET_KEY", TARGET_KEY)
    builder = StoreBuilder(tmp_path / "s.db")
    ids = [builder.exchange(f"ex-{i}", f"2026-11-20T10:0{i}:00.000000+00:00", chat(question), echo(chat(question)))
           for i, question in enumerate(QUESTIONS)]
    return builder, ids


def paraphrase_run(builder, writer, target, *extra: str, expect: int = 0) -> str:
    return cli_run("replay", "run", "--store", str(builder.path), "--target", "model:openai/target", "--api-base",
                   target.base_url, "--api-key-env", "REPLAY_TEST_TARGET_KEY", "--paraphrase-model", "openai/writer",
                   "--paraphrase-api-base", writer.base_url, "--paraphrase-api-key-env", "REPLAY_TEST_WRITER_KEY",
                   "--pass", "agreement>=0.99", *extra, expect=expect).stdout.splitlines()[0]


def test_paraphrases_are_written_once_each_replayed_k_times_and_give_the_sensitivity_the_test_expects(captured):
    builder, ids = captured
    with ScriptedModel(writer_answer) as writer, ScriptedModel(echo) as target:
        run_id = paraphrase_run(builder, writer, target, "--paraphrases", "3", "-k", "2")
        writes, replays = writer.requests, target.requests

    # One writer call per exchange and paraphrase number, deterministic settings, whatever k is.
    assert sorted((last_user(w["body"]), w["body"]["seed"]) for w in writes) == \
        sorted((q, n) for q in QUESTIONS for n in (1, 2, 3))
    assert {w["body"]["temperature"] for w in writes} == {0}
    expected_shares = []
    for question in QUESTIONS:
        written = {n: write_paraphrase(question, n) for n in (1, 2, 3)}
        replayed = [n for n, text in written.items() if text != question]      # an unchanged one is not replayed
        changed = [n for n in replayed if echo(chat(written[n])) != echo(chat(question))]
        expected_shares.append(len(changed) / len(replayed))
    assert sorted(last_user(r["body"]) for r in replays) == sorted(
        text for q in QUESTIONS for text in [q, q, *[write_paraphrase(q, n) for n in (1, 1, 2, 2)]])

    shown = show(builder.path, run_id)
    assert shown["run"]["paraphrase"] == {"model": "openai/writer", "count": 3}
    for question, share, figures in zip(QUESTIONS, expected_shares, shown["exchanges"]):
        perturbations = figures["perturbations"]
        assert perturbations["paraphrase-1"]["paraphrase"]["text"] == write_paraphrase(question, 1)
        assert perturbations["paraphrase-3"]["skipped"] == 2
        assert figures["sensitivity"]["share"] == pytest.approx(share)
        assert figures["sensitivity"]["changed_by"] == ["paraphrase-1"]
    assert 0 < shown["overall"]["sensitivity"] < 1
    assert shown["overall"]["sensitivity"] == pytest.approx(sum(expected_shares) / len(expected_shares))

    text = cli_run("replay", "show", run_id, "--store", str(builder.path)).stdout
    assert f"paraphrase-1: Please tell me: {QUESTIONS[0]}" in text
    assert "(not replayed: the paraphrase writer returned the message unchanged)" in text
    markdown = cli_run("replay", "show", run_id, "--store", str(builder.path), "--markdown").stdout
    assert "### Paraphrases replayed" in markdown and f"paraphrase-2: {QUESTIONS[1].upper()}" in markdown
    page_path = builder.path.parent / "run.html"
    cli_run("replay", "show", run_id, "--store", str(builder.path), "--html", str(page_path))
    page = page_path.read_text(encoding="utf-8")
    assert f'<pre class="answer paraphrase">Please tell me: {QUESTIONS[2]}</pre>' in page
    stored = ReplayStore(builder.store).paraphrase_rows(run_id)
    assert len(stored) == 9 and {row["repetition"] for row in stored} == {-1}
    assert len(ReplayStore(builder.store).results(run_id)) == 3 * (1 + 3) * 2    # writer rows are not results


def test_the_writer_gets_only_its_own_key_and_the_target_only_its_own(captured, monkeypatch):
    builder, _ = captured
    monkeypatch.setenv("OPENAI_API_KEY", "sk-ambient-key-litellm-would-use")
    with ScriptedModel(writer_answer) as writer, ScriptedModel(echo) as target:
        paraphrase_run(builder, writer, target, "--paraphrases", "1")
        writes, replays = writer.requests, target.requests
    assert {w["headers"]["authorization"] for w in writes} == {f"Bearer {WRITER_KEY}"}
    assert {r["headers"]["authorization"] for r in replays} == {f"Bearer {TARGET_KEY}"}
    assert TARGET_KEY not in orjson.dumps(writes).decode()
    assert WRITER_KEY not in orjson.dumps(replays).decode()
    assert {w["body"]["model"] for w in writes} == {"writer"} and {r["body"]["model"] for r in replays} == {"target"}


def test_a_resumed_run_replays_the_stored_paraphrases_without_asking_the_writer_again(captured):
    builder, ids = captured
    store = ReplayStore(builder.store)
    with ScriptedModel(writer_answer) as writer, ScriptedModel(echo) as target:
        run_id = paraphrase_run(builder, writer, target, "--paraphrases", "2")
        # As if killed after the paraphrases were written and stored, before their replays were.
        lost = store.db.execute("delete from replay_results where run_id = ? and perturbation like 'paraphrase-%' "
                                "and repetition >= 0", [run_id]).rowcount
        store.db.conn.commit()
        store.finish_run(run_id, "running", None)
        writes_before, replays_before = len(writer.requests), len(target.requests)
        assert replay("resume", run_id, "--store", str(builder.path)) == run_id
        assert len(writer.requests) == writes_before                   # nothing asked again
        assert len(target.requests) - replays_before == lost == len(ids) * 2
        replayed_again = [last_user(r["body"]) for r in target.requests[replays_before:]]
    assert sorted(replayed_again) == sorted(write_paraphrase(q, n) for q in QUESTIONS for n in (1, 2))
    assert store.get_run(run_id)["status"] == "complete"


def test_the_writers_cost_counts_in_the_runs_budget(captured):
    builder, ids = captured
    input_rate, output_rate = litellm_price("gpt-4o-mini")
    writer_cost = 1_000 * input_rate + 1_000 * output_rate
    replay_cost = 100 * input_rate + 100 * output_rate
    budget = 2 * replay_cost + writer_cost / 2     # crossed only if the writer's call is counted
    store = ReplayStore(builder.store)
    with ScriptedModel(writer_answer, usage=(1_000, 1_000)) as writer, \
            ScriptedModel(echo, usage=(100, 100)) as target:
        result = cli_run("replay", "run", "--store", str(builder.path), "--id", ids[0], "--target",
                         "model:openai/gpt-4o-mini", "--api-base", target.base_url, "--paraphrase-model",
                         "openai/gpt-4o-mini", "--paraphrase-api-base", writer.base_url, "--paraphrases", "2",
                         "--concurrency", "1", "--budget-usd", repr(budget))
        run_id = result.stdout.splitlines()[0]
        assert len(writer.requests) == 1 and len(target.requests) == 2
    assert store.get_run(run_id)["status"] == "over_budget"
    assert store.spent_usd(run_id) == pytest.approx(writer_cost + 2 * replay_cost)
    assert "stopped at its budget" in result.stderr


def test_a_failing_writer_is_recorded_and_its_paraphrases_are_skipped_not_counted(captured):
    builder, ids = captured
    with ScriptedModel(writer_answer, status=500) as writer, ScriptedModel(echo) as target:
        # The writer's calls failed, so the run is incomplete: exit 1.
        run_id = paraphrase_run(builder, writer, target, "--paraphrases", "2", "-k", "2", expect=1)
        assert len(writer.requests) == len(ids) * 2                     # never retried
        assert len(target.requests) == len(ids) * 2                     # only the captured requests, k times
    shown = show(builder.path, run_id)
    for figures in shown["exchanges"]:
        written = figures["perturbations"]["paraphrase-1"]["paraphrase"]
        assert written["outcome"] == "error" and written["text"] is None
        assert figures["perturbations"]["paraphrase-1"]["skipped"] == 2
        assert "sensitivity" not in figures
    assert shown["overall"]["sensitivity"] is None
    assert "paraphrase-2: not written (" in cli_run("replay", "show", run_id, "--store", str(builder.path)).stdout


def test_paraphrase_options_without_a_paraphrase_model_are_a_usage_error(captured):
    builder, _ = captured
    result = cli_run("replay", "run", "--store", str(builder.path), "--target", "model:openai/x", "--paraphrases",
                     "2", expect=2)
    assert "--paraphrase-model" in result.stderr


# -- the pieces ------------------------------------------------------------------------------------

def test_the_paraphrased_text_is_the_last_user_message_when_it_is_one_piece_of_text():
    assert last_user_text(chat("first") | {"messages": [{"role": "user", "content": "first"},
                                                        {"role": "assistant", "content": "a"},
                                                        {"role": "user", "content": "second"}]}) == "second"
    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "look"},
                                                      {"type": "image_url", "image_url": {"url": "data:,"}}]}]}
    assert last_user_text(parts) == "look"
    two_texts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                          {"type": "text", "text": "b"}]}]}
    assert last_user_text(two_texts) is None
    assert last_user_text({"messages": [{"role": "system", "content": "s"}]}) is None


def test_with_paraphrase_changes_a_copy_and_keeps_the_other_parts():
    request = {"messages": [{"role": "user", "content": [{"type": "text", "text": "look"},
                                                        {"type": "image_url", "image_url": {"url": "data:,"}}]}]}
    changed = with_paraphrase(request, "see")
    assert changed["messages"][0]["content"] == [{"type": "text", "text": "see"},
                                                 {"type": "image_url", "image_url": {"url": "data:,"}}]
    assert request["messages"][0]["content"][0]["text"] == "look"


def test_the_writing_request_is_deterministic_and_names_the_variant():
    body = writing_request("Where is it?", 2, 3)
    assert body["temperature"] == 0 and body["seed"] == 2
    assert "variant 2 of 3" in body["messages"][0]["content"]
    assert body["messages"][1] == {"role": "user", "content": "Where is it?"}
    assert writing_request("Where is it?", 2, 3) == body
    assert cleaned('  "Where is it, please?"\n') == "Where is it, please?" and cleaned("  ") is None
    assert paraphrase_number("paraphrase-12") == 12 and paraphrase_number("typos") is None
