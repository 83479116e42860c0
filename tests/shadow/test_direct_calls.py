"""OpenAI-compatible candidates called without litellm record exactly what the litellm path
records: the same request reaches the candidate, and every answer or fault ends as the same
outcome, error class and message (so the same reason in the report)."""

from __future__ import annotations

import asyncio
import os

import pytest

from shadowtap.evaluators.report.error_reasons import error_reason
from shadowtap.proxy.shadow.calls import CallResult, CallTarget, call_chat, call_chat_directly, configure_litellm
from shadowtap.proxy.shadow.direct import DirectClient
from tests.support.fake_candidates import FakeCandidate, refused_base_url

FAULTS = ("ok", "error500", "error429", "error503", "reset", "redirect", "quote_request", "refused", "hang")
REQUEST = {"model": "primary-model", "user": "u-1", "max_tokens": 50, "temperature": 0.7,
           "messages": [{"role": "system", "content": "the app's own prompt"}, {"role": "user", "content": "hi"}],
           "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]}


def recorded(result: CallResult) -> tuple:
    message = result.error_message
    if message and "invalid request: {" in message:
        # quote_request echoes the request's headers, which differ by client: compare up to the quote.
        message = message.split("{", 1)[0]
    return (result.outcome, result.error_class, message, result.text, result.finish_reason,
            result.tool_calls, error_reason(result.error_class, message, result.outcome))


async def both_paths(base_url: str, timeout_s: float, stream: bool) -> tuple[CallResult, CallResult]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    configure_litellm(litellm)
    target = CallTarget("c", "openai/cand-model", base_url, "sk-candidate", timeout_s, 40,
                        system_prompt="Answer briefly.", params={"temperature": 0}, direct=True)
    direct = DirectClient()
    await direct.start()
    try:
        await call_chat(litellm, REQUEST, CallTarget("warm", "openai/m", refused_base_url(), "k", 30, 8),
                        stream=stream)  # litellm's first call imports half of it: not a fair deadline
        through_litellm = await call_chat(litellm, REQUEST, target, stream=stream)
        without = await call_chat_directly(direct, REQUEST, target, stream=stream)
    finally:
        await direct.close()
    return through_litellm, without


@pytest.mark.e2e
@pytest.mark.timeout(120)
@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "streamed"])
@pytest.mark.parametrize("fault", FAULTS)
def test_a_direct_call_records_what_the_litellm_path_records_for_each_answer_and_fault(fault, stream):
    if fault == "refused":
        through_litellm, without = asyncio.run(both_paths(refused_base_url(), 10.0, stream))
        assert recorded(without) == recorded(through_litellm)
        return
    with FakeCandidate(fault, redirect_to="http://127.0.0.1:9/v1") as candidate:
        through_litellm, without = asyncio.run(both_paths(candidate.base_url, 0.5 if fault == "hang" else 10.0,
                                                          stream))
        asked = [request for request in candidate.requests if request["path"] == "/v1/chat/completions"]
    assert recorded(without) == recorded(through_litellm)
    if "sk-candidate" in (through_litellm.error_message or "") + (without.error_message or ""):
        raise AssertionError("the candidate's key reached an error message")
    by_litellm, by_direct = asked[-2]["body"], asked[-1]["body"]
    assert by_direct == by_litellm  # the same request, field for field
    assert asked[-1]["headers"]["authorization"] == asked[-2]["headers"]["authorization"] == "Bearer sk-candidate"
    if fault == "ok" and not stream:
        assert without.usage == through_litellm.usage == {"prompt_tokens": 1000, "completion_tokens": 1000,
                                                           "total_tokens": 2000}


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_a_direct_call_never_follows_a_redirect_with_the_candidate_key():
    with FakeCandidate("ok") as elsewhere, FakeCandidate("redirect", redirect_to=elsewhere.base_url) as redirecting:
        async def call() -> CallResult:
            direct = DirectClient()
            await direct.start()
            try:
                target = CallTarget("c", "hosted_vllm/m", redirecting.base_url, "sk-candidate", 5.0, 40, direct=True)
                return await call_chat_directly(direct, REQUEST, target, stream=False)
            finally:
                await direct.close()

        result = asyncio.run(call())
        assert (result.outcome, result.error_class) == ("error", "APIError")
        assert elsewhere.requests == []
