"""Which exchanges `replay run` takes, and what `--dry-run` says about them, checked through the CLI."""

from __future__ import annotations

import re

import pytest

from shadowtap.core.store.replay_store import ReplayStore
from tests.support.replay_support import StoreBuilder, chat, cli_run, litellm_price

MODEL = "gpt-4o-mini"


@pytest.fixture
def builder(tmp_path):
    return StoreBuilder(tmp_path / "s.db")


def at(minute: int) -> str:
    return f"2026-11-20T10:{minute:02d}:00.000000+00:00"   # as the capture writer stores it


def dry_run(builder: StoreBuilder, *selection: str, k: int = 1) -> dict:
    """The dry run's count, listed ids and estimate, parsed from what it prints."""
    result = cli_run("replay", "run", "--store", str(builder.path), "--target", f"model:openai/{MODEL}",
                     "--api-base", "http://127.0.0.1:9/v1", "-k", str(k), "--dry-run", *selection)
    text = result.stdout
    count = re.search(r"would replay (\d+) exchanges x (\d+) = (\d+) calls", text)
    ids = re.search(r"first ids: (.*)", text)
    cost = re.search(r"estimated cost: \$([\d.]+)", text)
    return {"count": int(count.group(1)), "calls": int(count.group(3)),
            "ids": ids.group(1).split(", ") if ids else [], "usd": float(cost.group(1)), "text": text}


def test_dry_run_prints_count_first_ids_and_the_captured_tokens_priced_times_k(builder):
    tokens = [(10_000, 2_000), (20_000, 1_000), (5_000, 5_000), (8_000, 0), (1_000, 9_000), (3_000, 3_000),
              (12_000, 4_321)]
    ids = [builder.exchange(f"ex-{i}", at(i), chat(f"q{i}"), prompt_tokens=p, completion_tokens=c)
           for i, (p, c) in enumerate(tokens)]
    input_rate, output_rate = litellm_price(MODEL)
    expected = sum(p * input_rate + c * output_rate for p, c in tokens) * 3
    assert expected > 0.01   # visible at the four decimals printed

    shown = dry_run(builder, k=3)
    assert shown["count"] == 7 and shown["calls"] == 21
    assert shown["ids"] == ids[:5]
    assert shown["usd"] == pytest.approx(expected, abs=0.00005)
    assert "without a price" not in shown["text"]
    assert ReplayStore(builder.store).db["replay_runs"].count == 0      # nothing recorded, nothing sent


def test_dry_run_counts_exchanges_it_cannot_price(builder):
    builder.exchange("ex-1", at(1), chat("q1"), prompt_tokens=10_000, completion_tokens=3_000)
    builder.exchange("ex-2", at(2), chat("q2"), prompt_tokens=None, completion_tokens=None)
    shown = dry_run(builder)
    input_rate, output_rate = litellm_price(MODEL)
    assert shown["usd"] == pytest.approx(10_000 * input_rate + 3_000 * output_rate, abs=0.00005)
    assert "(1 exchanges without a price or token counts)" in shown["text"]


def test_where_selects_on_the_primarys_score_only(builder):
    for i, (faithfulness, candidate_score) in enumerate([(0.2, None), (0.49, None), (0.5, None), (0.9, 0.1),
                                                         (None, 0.1), (0.1, None)]):
        builder.exchange(f"ex-{i}", at(i), chat(f"q{i}"))
        if faithfulness is not None:
            builder.score(f"ex-{i}", "faithfulness", faithfulness)
        if candidate_score is not None:
            builder.score(f"ex-{i}", "faithfulness", candidate_score, source="cand")
    builder.score("ex-2", "grounding", 0.1)

    assert dry_run(builder, "--where", "faithfulness < 0.5")["ids"] == ["ex-0", "ex-1", "ex-5"]
    assert dry_run(builder, "--where", "faithfulness >= 0.5")["ids"] == ["ex-2", "ex-3"]
    both = dry_run(builder, "--where", "faithfulness >= 0.5", "--where", "grounding<=0.1")
    assert both["ids"] == ["ex-2"]


@pytest.mark.parametrize("option, value, expected", [("--where", "faithfulness is low", "EVALUATOR OP NUMBER"),
                                                     ("--flag", "on_fire", "client_disconnected"),
                                                     ("--tag", "team", "NAME=VALUE")])
def test_a_selection_option_that_cannot_be_understood_is_a_usage_error_saying_what_would_do(builder, option, value,
                                                                                          expected):
    builder.exchange("ex-1", at(1), chat("q1"))
    result = cli_run("replay", "run", "--store", str(builder.path), "--target", "model:openai/x", "--dry-run",
                     option, value, expect=2)
    assert expected in result.stderr


def test_tag_flag_and_status_each_narrow_the_selection(builder):
    builder.exchange("ex-search", at(1), chat("q1"), tags={"team": "search"})
    builder.exchange("ex-billing", at(2), chat("q2"), tags={"team": "billing"})
    builder.exchange("ex-untagged", at(3), chat("q3"))
    builder.exchange("ex-gone", at(4), chat("q4"), tags={"team": "search"}, client_disconnected=1)
    builder.exchange("ex-broken", at(5), chat("q5"), status=502, upstream_error="connection refused")

    assert dry_run(builder, "--tag", "team=search")["ids"] == ["ex-search", "ex-gone"]
    assert dry_run(builder, "--flag", "client_disconnected")["ids"] == ["ex-gone"]
    assert dry_run(builder, "--flag", "upstream_error")["ids"] == ["ex-broken"]
    assert dry_run(builder, "--status", "502")["ids"] == ["ex-broken"]
    assert dry_run(builder, "--status", "200", "--tag", "team=search")["ids"] == ["ex-search", "ex-gone"]
    assert dry_run(builder, "--tag", "team=nobody")["count"] == 0


def test_since_is_inclusive_and_until_exclusive(builder):
    for minute in range(6):
        builder.exchange(f"ex-{minute}", at(minute), chat(f"q{minute}"))
    assert dry_run(builder, "--since", at(2), "--until", at(4))["ids"] == ["ex-2", "ex-3"]
    assert dry_run(builder, "--since", at(4))["ids"] == ["ex-4", "ex-5"]
    assert dry_run(builder, "--until", at(1))["ids"] == ["ex-0"]


def test_sample_is_deterministic_and_takes_n_of_the_selection(builder):
    for i in range(30):
        builder.exchange(f"ex-{i:02d}", at(i), chat(f"q{i}"), tags={"half": "a" if i < 15 else "b"})
    first, again = dry_run(builder, "--sample", "4"), dry_run(builder, "--sample", "4")
    assert first["count"] == 4 and first["ids"] == again["ids"]
    assert len(set(first["ids"])) == 4
    assert first["ids"] == sorted(first["ids"])                        # kept in capture order
    assert set(dry_run(builder, "--sample", "3")["ids"]) < set(first["ids"])   # a smaller sample is a subset
    within = dry_run(builder, "--tag", "half=b", "--sample", "5")
    assert within["count"] == 5 and all(int(i[3:]) >= 15 for i in within["ids"])
    assert dry_run(builder, "--sample", "100")["count"] == 30


def test_a_run_records_the_selection_it_replayed(builder, tmp_path):
    from tests.support.replay_support import ScriptedModel, replay

    for i in range(6):
        builder.exchange(f"ex-{i}", at(i), chat(f"q{i}"), tags={"team": "search" if i % 2 else "billing"})
    with ScriptedModel(lambda body: "captured answer") as model:
        run_id = replay("run", "--store", str(builder.path), "--target", "model:openai/x", "--api-base",
                        model.base_url, "--tag", "team=search", "--since", at(2))
        assert sorted(r["body"]["messages"][0]["content"] for r in model.requests) == ["q3", "q5"]
    run = ReplayStore(builder.store).get_run(run_id)
    assert run["selection"]["exchange_ids"] == ["ex-3", "ex-5"]
    assert run["selection"]["filters"] == {"since": at(2), "tags": ["team=search"]}
