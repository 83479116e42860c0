"""`shadowtap captures list|show|export` over a store with known exchanges."""

import base64
import re
import time

import orjson
import pytest
from click.testing import CliRunner

from shadowtap.core.cli import cli
from shadowtap.core.store import CaptureStore
from tests.support.factories import raw_exchange, row_builder


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "captures.db"
    store = CaptureStore.open(path)
    builder = row_builder()
    now = time.time()
    raws = [
        raw_exchange(request_headers=[(b"x-shadowtap-team", b"search")], started_at=now - 3 * 3600),
        raw_exchange(status=429, response={"error": {"message": "slow down"}}, started_at=now - 60),
        raw_exchange(path="/v1/embeddings", request={"model": "text-embedding-3-small", "input": "x"},
                     response={"data": [], "usage": {"prompt_tokens": 1, "total_tokens": 1}}, started_at=now - 30),
        raw_exchange(request=b"\xff not json", started_at=now - 10),
    ]
    store.insert_exchanges([builder.build(raw) for raw in raws])
    store.close()
    return str(path)


def run(*args):
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "200"})


def listed_ids(output: str) -> list[str]:
    return [orjson.loads(line)["id"] for line in output.splitlines() if line.strip()]


def test_list_shows_a_table_of_the_newest_exchanges_first(store_path):
    result = run("captures", "list", "--store", store_path)
    assert result.exit_code == 0
    assert "4 of 4 captured exchanges" in result.output
    # The 429 exchange is the oldest; "429" alone as a word is its status (an id may hold the digits).
    lines = result.output.splitlines()
    embeddings_line = next(index for index, line in enumerate(lines) if "embeddings" in line)
    status_429_line = next(index for index, line in enumerate(lines) if re.search(r"\b429\b", line))
    assert embeddings_line < status_429_line


@pytest.mark.parametrize("options, expected_count", [
    (["--endpoint", "embeddings"], 1),
    (["--status", "429"], 1),
    (["--tag", "team=search"], 1),
    (["--since", "2h"], 3),
    (["--until", "2h"], 1),
    (["--model", "gpt-4o-mini"], 2),
    (["--limit", "2"], 2),
])
def test_list_filters_select_the_matching_exchanges(store_path, options, expected_count):
    result = run("captures", "list", "--store", store_path, "--json", *options)
    assert result.exit_code == 0
    assert len(listed_ids(result.output)) == expected_count


def test_show_prints_the_full_exchange_for_an_id_prefix(store_path):
    exchange_id = listed_ids(run("captures", "list", "--store", store_path, "--json", "--status", "429").output)[0]
    result = run("captures", "show", exchange_id[:20], "--store", store_path, "--json")
    assert result.exit_code == 0
    document = orjson.loads(result.output)
    assert document["id"] == exchange_id
    assert document["response"] == {"error": {"message": "slow down"}}
    assert document["request"]["messages"][0]["content"] == "hi"


def test_show_reports_the_prompt_cache_tokens_of_an_answer_that_used_the_cache(tmp_path):
    path = tmp_path / "cached.db"
    store = CaptureStore.open(path)
    usage = {"prompt_tokens": 1200, "completion_tokens": 30, "total_tokens": 1230,
             "prompt_tokens_details": {"cached_tokens": 1024}}
    answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}], "usage": usage}
    store.insert_exchanges([row_builder().build(raw_exchange(response=answer))])
    store.close()
    exchange_id = listed_ids(run("captures", "list", "--store", str(path), "--json").output)[0]
    shown = run("captures", "show", exchange_id, "--store", str(path)).output
    assert re.search(r"prompt cache\s*│\s*0 written, 1024 read", shown), shown


def test_show_exits_1_when_the_exchange_is_unknown(store_path):
    result = run("captures", "show", "nope", "--store", store_path)
    assert result.exit_code == 1
    assert "no captured exchange with id 'nope'" in result.output


def test_export_writes_one_json_line_per_exchange_with_bytes_as_base64(store_path, tmp_path):
    out = tmp_path / "out.jsonl"
    result = run("captures", "export", "--store", store_path, "-o", str(out))
    assert result.exit_code == 0
    documents = [orjson.loads(line) for line in out.read_text().splitlines()]
    assert len(documents) == 4
    unparseable = [d for d in documents if d["request_unparseable"]]
    assert base64.b64decode(unparseable[0]["request"]["base64"]) == b"\xff not json"


@pytest.mark.parametrize("options, message", [
    (["--tag", "team"], "expected NAME=VALUE"),
    (["--since", "yesterday"], "expected an ISO time"),
])
def test_bad_filters_exit_2_with_what_is_accepted(store_path, options, message):
    result = run("captures", "list", "--store", store_path, *options)
    assert result.exit_code == 2
    assert message in result.output


def test_a_store_in_a_missing_directory_exits_2(tmp_path):
    result = run("captures", "list", "--store", str(tmp_path / "missing" / "x.db"))
    assert result.exit_code == 2
    assert "no capture store at" in result.output


def test_a_mistyped_store_path_exits_2_instead_of_creating_an_empty_store(tmp_path):
    result = run("captures", "list", "--store", str(tmp_path / "captrues.db"))
    assert result.exit_code == 2 and "no capture store at" in result.output
    assert not (tmp_path / "captrues.db").exists()


# -- show: was it mirrored, and how did it score? -------------------------------------------------

STREAM_PIECES = ("The refund ", "takes five ", "working days.")


def sse_answer() -> bytes:
    chunks = [{"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
               "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
              for piece in STREAM_PIECES]
    chunks.append({"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return b"".join(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks) + b"data: [DONE]\n\n"


@pytest.fixture
def streamed(tmp_path):
    """A streamed exchange, mirrored to three candidates (answered, failed, skipped) and scored."""
    path = tmp_path / "streamed.db"
    store = CaptureStore.open(path)
    row = row_builder().build(raw_exchange(
        request={"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "How long?"}]},
        response=sse_answer(), response_headers=[(b"content-type", b"text/event-stream")]))
    store.insert_exchanges([row])
    base = {"exchange_id": row["id"], "started_at": row["started_at"], "is_twin": 0}
    store.db["shadows"].insert_all([
        {**base, "id": f"{row['id']}:small", "candidate": "small", "model": "openai/small", "outcome": "ok",
         "latency_ms": 120.0, "response_text": "Refunds take about a week.", "finish_reason": "stop"},
        {**base, "id": f"{row['id']}:typo", "candidate": "typo", "model": "opnai/gpt-4o-mini", "outcome": "error",
         "error_class": "BadRequestError", "error_message": "LLM Provider NOT provided."},
        {**base, "id": f"{row['id']}:tiny", "candidate": "tiny", "model": "openai/tiny", "outcome": "skipped",
         "skip_reason": "sampled_out"}])
    store.db["scores"].insert_all([
        {"id": f"{row['id']}:small:agreement", "exchange_id": row["id"], "source": "small", "evaluator": "agreement",
         "evaluator_version": "2", "outcome": "score", "value": 0.4321, "label": "disagree", "details": "{}",
         "scored_at": "2026-01-01T00:00:00+00:00"},
        {"id": f"{row['id']}:primary:grounding", "exchange_id": row["id"], "source": "primary",
         "evaluator": "grounding", "evaluator_version": "1", "outcome": "not_applicable", "value": None,
         "label": None, "details": '{"reason": "no retrieved context"}', "scored_at": "2026-01-01T00:00:00+00:00"}])
    store.close()
    return str(path), row["id"]


def test_show_prints_the_assembled_stream_each_shadow_and_the_scores_not_raw_bytes(streamed):
    store_path, exchange_id = streamed
    result = run("captures", "show", exchange_id, "--store", store_path)
    assert result.exit_code == 0, result.output
    output = result.output
    assert "".join(STREAM_PIECES) in output
    assert "data:" not in output and "base64" not in output
    assert "user: How long?" in output
    assert "Refunds take about a week." in output
    assert "typo" in output and "error: BadRequestError: LLM Provider NOT provided." in output
    assert "tiny" in output and "skipped: sampled_out" in output
    assert "0.432 disagree" in output
    assert re.search(r"grounding\s*│\s*n/a", output)     # the primary's: not applicable (--json says why)


def test_show_raw_adds_the_bytes_as_they_crossed_the_wire(streamed):
    store_path, exchange_id = streamed
    output = run("captures", "show", exchange_id, "--store", store_path, "--raw").output
    assert "data: [DONE]" in output and "".join(STREAM_PIECES) in output


def test_show_json_has_the_shadows_and_scores_and_raw_bytes_only_with_raw(streamed):
    store_path, exchange_id = streamed
    document = orjson.loads(run("captures", "show", exchange_id, "--store", store_path, "--json").output)
    assert document["response"]["text"] == "".join(STREAM_PIECES) and "raw" not in document["response"]
    assert "raw" not in document
    assert [(s["candidate"], s["outcome"]) for s in document["shadows"]] == [
        ("small", "ok"), ("tiny", "skipped"), ("typo", "error")]
    assert {(s["source"], s["evaluator"], s["outcome"]) for s in document["scores"]} == {
        ("small", "agreement", "score"), ("primary", "grounding", "not_applicable")}
    with_raw = orjson.loads(run("captures", "show", exchange_id, "--store", store_path, "--json", "--raw").output)
    assert with_raw["raw"]["response_raw"].endswith("data: [DONE]\n\n")
