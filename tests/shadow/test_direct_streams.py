"""A directly called candidate's stream is assembled as litellm assembles it: text, tool calls in
pieces, the finish reason, usage from the last event, and lines longer than aiohttp's
line limit (LineTooLong otherwise)."""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from shadowtap.proxy.shadow.calls import CallTarget, call_chat_directly
from shadowtap.proxy.shadow.direct import DirectClient

LONG_ARGUMENT = "x" * 1_000_000  # one event longer than aiohttp's 512 KiB line limit


def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> bytes:
    event = {"id": "c", "object": "chat.completion.chunk",
             "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        event["usage"] = usage
    return b"data: " + orjson.dumps(event) + b"\r\n\r\n"


EVENTS = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Looking "}),
    chunk({"content": "it up."}),
    chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                           "function": {"name": "lookup", "arguments": '{"q": "'}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": LONG_ARGUMENT}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"}'}}]}),
    chunk({}, "tool_calls"),
    chunk({}, usage={"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}),
    b"data: [DONE]\r\n\r\n",
]


async def stream_from_server() -> tuple:
    received: list[dict] = []

    async def completions(request: web.Request) -> web.StreamResponse:
        received.append(await request.json())
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for event in EVENTS:
            for start in range(0, len(event), 7000):  # events split across reads
                await response.write(event[start:start + 7000])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    direct = DirectClient()
    await direct.start()
    try:
        target = CallTarget("c", "hosted_vllm/model-7b", f"http://127.0.0.1:{port}/v1", "k", 10.0, 64, direct=True)
        result = await call_chat_directly(direct, {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                                          target, stream=True)
    finally:
        await direct.close()
        await runner.cleanup()
    return result, received


def test_a_streamed_answer_is_assembled_with_its_tool_call_usage_and_an_event_longer_than_aiohttps_line_limit():
    result, received = asyncio.run(stream_from_server())
    assert (result.outcome, result.error_class) == ("ok", None)
    assert result.text == "Looking it up."
    assert result.tool_calls == [{"id": "call_1", "type": "function", "function": {
        "name": "lookup", "arguments": '{"q": "' + LONG_ARGUMENT + '"}'}}]
    assert result.finish_reason == "tool_calls"
    assert result.usage == {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}
    assert result.ttft_ms is not None and result.ttft_ms <= result.latency_ms
    (request,) = received
    assert (request["model"], request["stream"], request["stream_options"]) == ("model-7b", True,
                                                                                 {"include_usage": True})
