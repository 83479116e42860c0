"""A fake OpenAI-compatible candidate on loopback that can answer, hang, fail or reset.

It records what it received (headers, bodies) and the peak number of requests in flight, so
tests can check what the shadow worker sent and how many calls it allowed at once.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading

import orjson

from proxy.local_processes import free_port


def _completion(stream: bool) -> bytes:
    if not stream:
        body = orjson.dumps({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 1, "model": "fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "fake answer"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 1000, "total_tokens": 2000}})
        return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                + str(len(body)).encode() + b"\r\n\r\n" + body)
    events = b""
    for delta, finish in (({"role": "assistant", "content": ""}, None), ({"content": "fake "}, None),
                          ({"content": "answer"}, None), ({}, "stop")):
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "fake",
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        events += b"data: " + orjson.dumps(chunk) + b"\n\n"
    events += b"data: [DONE]\n\n"
    return (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: "
            + str(len(events)).encode() + b"\r\n\r\n" + events)


class FakeCandidate:
    """behaviour: "ok" | "hang" | "error500" | "reset"."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.port = free_port()
        self.requests: list[dict] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FakeCandidate:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(5)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._run())
        self._loop.close()

    async def _run(self) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self._ready.set()
        await self._stopping.wait()
        server.close()
        handlers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, v in
                           (line.split(":", 1) for line in lines[1:] if ":" in line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                parsed = orjson.loads(body) if body else None
                self.requests.append({"path": lines[0].split()[1], "headers": headers, "body": parsed})
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                try:
                    if not await self._respond(writer, bool(parsed and parsed.get("stream"))):
                        return
                finally:
                    self.in_flight -= 1
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()

    async def _respond(self, writer: asyncio.StreamWriter, stream: bool) -> bool:
        if self.behaviour == "hang":
            await asyncio.sleep(3600)
        if self.behaviour == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close
            return False
        if self.behaviour == "error500":
            body = b'{"error": {"message": "candidate exploded", "type": "server_error"}}'
            writer.write(b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
                         b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        else:
            writer.write(_completion(stream))
        await writer.drain()
        return True
