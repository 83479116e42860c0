"""How a candidate is asked: the request's dialect builds the call, the candidate's `api` picks
litellm's function, and the candidate's own limits and key apply (litellm faked, nothing sent)."""

import asyncio
from types import SimpleNamespace

from shadowtap.proxy.dialects import dialect_named
from shadowtap.proxy.shadow.calls import CallTarget, call_candidate, responses_kwargs

MESSAGES_REQUEST = {"model": "claude-haiku-4-5", "max_tokens": 4000, "system": "Be brief.",
                    "messages": [{"role": "user", "content": [{"type": "text", "text": "Hours?"}]}],
                    "tools": [{"name": "lookup", "input_schema": {"type": "object"}}]}


class FakeLitellm:
    """Records each call's function and arguments; answers like litellm's response objects."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    async def acompletion(self, **kwargs):
        self.calls.append(("acompletion", kwargs))
        message = SimpleNamespace(content="Nine to five.", tool_calls=None)
        usage = SimpleNamespace(prompt_tokens=7, completion_tokens=4, total_tokens=11)
        return SimpleNamespace(choices=[SimpleNamespace(message=message, finish_reason="stop")], usage=usage)

    async def aresponses(self, **kwargs):
        self.calls.append(("aresponses", kwargs))
        return {"status": "completed", "usage": {"input_tokens": 7, "output_tokens": 3}, "output": [
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "9 to 5."}]}]}

    async def aembedding(self, **kwargs):
        self.calls.append(("aembedding", kwargs))
        return SimpleNamespace(usage=SimpleNamespace(prompt_tokens=2, completion_tokens=None, total_tokens=2))


def target(api: str = "chat", **options) -> CallTarget:
    return CallTarget("c", "openai/small", "http://127.0.0.1:9/v1", "cand-key", 5.0, 256, api=api, **options)


def call(dialect: str, body: dict, candidate: CallTarget):
    litellm = FakeLitellm()
    result = asyncio.run(call_candidate(litellm, dialect_named(dialect), body, candidate, stream=False))
    return litellm.calls, result


def test_a_messages_request_reaches_a_chat_candidate_as_chat_completions_with_its_cap_and_key():
    calls, result = call("anthropic.messages", MESSAGES_REQUEST, target())
    [(function, kwargs)] = calls
    assert function == "acompletion"
    assert kwargs["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hours?"}]
    assert kwargs["tools"] == [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    assert (kwargs["model"], kwargs["max_tokens"], kwargs["api_key"]) == ("openai/small", 256, "cand-key")
    assert (kwargs["num_retries"], kwargs["max_retries"]) == (0, 0)
    assert (result.outcome, result.text, result.usage["total_tokens"]) == ("ok", "Nine to five.", 11)


def test_a_messages_request_reaches_a_responses_candidate_as_a_stateless_responses_request():
    calls, result = call("anthropic.messages", MESSAGES_REQUEST, target("responses", system_prompt="New prompt."))
    [(function, kwargs)] = calls
    assert function == "aresponses"
    assert kwargs["input"] == [{"role": "user", "content": "Hours?"}]
    assert (kwargs["instructions"], kwargs["max_output_tokens"], kwargs["store"]) == ("New prompt.", 256, False)
    assert kwargs["tools"] == [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]
    assert (result.outcome, result.text, result.usage) == (
        "ok", "9 to 5.", {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10})


def test_a_responses_request_goes_to_a_responses_candidate_as_itself_never_stored():
    request = {"model": "gpt-4.1", "input": "Hours?", "store": True, "max_output_tokens": 100, "metadata": {"a": "b"},
               "reasoning": {"effort": "low"}}
    shadow = dialect_named("responses").shadow_request(request)
    kwargs = responses_kwargs(shadow, target("responses"))
    assert kwargs == {"model": "openai/small", "input": "Hours?", "store": False, "max_output_tokens": 100,
                      "reasoning": {"effort": "low"}}


def test_an_embedding_request_is_embedded_whatever_the_candidates_api():
    calls, result = call("embeddings", {"model": "e", "input": ["a"], "dimensions": 8}, target("responses"))
    assert [(function, kwargs["input"], kwargs["dimensions"]) for function, kwargs in calls] == [
        ("aembedding", ["a"], 8)]
    assert result.outcome == "ok"
