"""`replay run --perturb` end to end: captured simulator traffic replayed against deterministic fake targets."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from shadowtap.core.cli import cli
from shadowtap.core.store import CaptureStore
from shadowtap.core.store.replay_store import ReplayStore
from shadowtap.replay.perturb import perturbations
from tests.support.factories import capture_from_upstream
from tests.support.fake_candidates import FakeCandidate

DOCUMENTS = ('Answer from the documents.\n<document id="a">Paris opens at nine.</document>\n'
             '<document id="b">Lyon opens at ten.</document>')


def chat(i: int) -> dict:
    """Plain questions, and every third one with two retrieved documents in the system message."""
    messages = [{"role": "user", "content": f"When does the museum number {i} in Paris usually open, please?"}]
    if i % 3 == 0:
        messages.insert(0, {"role": "system", "content": DOCUMENTS})
    return {"model": "sim-large", "messages": messages}


def capture(store_path, base_url: str, count: int) -> list[str]:
    return capture_from_upstream(store_path, base_url, [chat(i) for i in range(count)])


class CaseInsensitiveEcho(FakeCandidate):
    """Answers with the last user message, lower-cased: it notices every perturbation of that message
    except casing, and ignores the system message (so the documents' order too)."""

    def __init__(self) -> None:
        super().__init__("ok")

    async def _respond(self, writer, stream: bool) -> bool:
        # _handle appends this request just before awaiting here, with no await in between.
        body = self.requests[-1]["body"]
        answer = echo(body)
        payload = orjson.dumps({
            "id": "chatcmpl-echo", "object": "chat.completion", "created": 1, "model": "echo",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}})
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                     + str(len(payload)).encode() + b"\r\n\r\n" + payload)
        await writer.drain()
        return True


def echo(request: dict) -> str:
    users = [m["content"] for m in request["messages"] if m.get("role") == "user"]
    return users[-1].lower()


def replay(*args: str) -> str:
    result = CliRunner().invoke(cli, ["replay", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()[0]


def show(db, run_id: str) -> dict:
    result = CliRunner().invoke(cli, ["replay", "show", run_id, "--store", str(db), "--json"])
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)


@pytest.fixture
def captured(simulator, tmp_path):
    db = tmp_path / "s.db"
    return db, capture(db, simulator.base_url, 6)


def test_sensitivity_is_zero_when_the_target_answers_the_same_whatever_the_request(captured):
    db, ids = captured
    with FakeCandidate("ok") as fixed:
        run_id = replay("run", "--store", str(db), "--target", "model:openai/x", "--api-base", fixed.base_url,
                        "--perturb", "-k", "1", "--pass", "agreement>=0.8")
        sent = len(fixed.requests)
    shown = show(db, run_id)
    expected_variants = {i: len(perturbations(chat(i))) for i in range(len(ids))}
    assert sent == sum(1 + n for n in expected_variants.values())
    assert shown["run"]["status"] == "complete"
    assert shown["overall"]["sensitivity"] == 0.0
    for i, figures in enumerate(shown["exchanges"]):
        assert set(figures["perturbations"]) == {name for name, _ in perturbations(chat(i))}
        assert figures["sensitivity"] == {"perturbations": expected_variants[i], "changed": 0, "share": 0.0,
                                          "changed_by": []}
    # Documents appear in every third request, so context_order is exercised too.
    assert "context_order" in shown["exchanges"][0]["perturbations"]
    assert "context_order" not in shown["exchanges"][1]["perturbations"]


def test_sensitivity_counts_the_perturbations_a_case_insensitive_echo_notices(captured):
    db, ids = captured
    with CaseInsensitiveEcho() as target:
        run_id = replay("run", "--store", str(db), "--target", "model:openai/x", "--api-base", target.base_url,
                        "--perturb", "-k", "1", "--pass", "agreement>=0.99", "--concurrency", "1")
    shown = show(db, run_id)
    expected_shares = []
    for i, figures in enumerate(shown["exchanges"]):
        request = chat(i)
        changed = sorted(name for name, perturbed in perturbations(request) if echo(perturbed) != echo(request))
        applied = len(perturbations(request))
        assert figures["sensitivity"]["changed_by"] == changed
        assert figures["sensitivity"]["share"] == pytest.approx(len(changed) / applied)
        expected_shares.append(len(changed) / applied)
        assert "casing" not in changed and "context_order" not in changed  # the test can fail both ways
    assert 0 < shown["overall"]["sensitivity"] < 1
    assert shown["overall"]["sensitivity"] == pytest.approx(sum(expected_shares) / len(expected_shares))
    results = ReplayStore(CaptureStore.open(db)).results(run_id)
    assert {r["perturbation"] for r in results} == {None, "whitespace", "casing", "punctuation", "context_order",
                                                    "typos"}
    assert all(r["outcome"] == "ok" for r in results)
