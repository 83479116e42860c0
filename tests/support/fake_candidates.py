"""A fake OpenAI-compatible candidate on loopback that can answer, hang, trickle, fail, reset or redirect.

It records what it received (headers, bodies) and the peak number of requests in flight, so
tests can check what the shadow worker sent, how many calls it allowed at once and that nothing
was retried. `refused_base_url()` is the fault no server can play: nothing listening at all.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading

import orjson

from shadowtap.proxy.local_processes import free_port

BEHAVIOURS = ("ok", "hang", "trickle", "error500", "error429", "error503", "reset", "redirect", "quote_request")
_ERRORS = {"error500": (b"500 Internal Server Error", b"server_error"),
           "error429": (b"429 Too Many Requests", b"requests"),
           "error503": (b"503 Service Unavailable", b"server_error")}


def refused_base_url() -> str:
    """A loopback base URL where connections are refused: the port was free a moment ago."""
    return f"http://127.0.0.1:{free_port()}/v1"


def _json_response(status: bytes, body: bytes, extra_headers: bytes = b"") -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n" + extra_headers
            + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


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
    """behaviour: one of BEHAVIOURS.

    hang: never answers (it notices when the caller closes). trickle: a complete, valid answer sent one byte
    every `trickle_interval_s`
    (so only a total deadline can stop it, never a per-read one). error500/429/503: an OpenAI-style
    error (429 and 503 with `retry-after: 0`, which invites a retry). reset: a TCP reset instead of
    an answer. redirect: 307 to `redirect_to`. quote_request: a 400 whose message quotes the request's
    headers and body back, as careless providers do.
    """

    def __init__(self, behaviour: str, *, redirect_to: str = "", trickle_interval_s: float = 0.3) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}; expected one of {', '.join(BEHAVIOURS)}")
        self.behaviour = behaviour
        self.redirect_to = redirect_to
        self.trickle_interval_s = trickle_interval_s
        self.port = free_port()
        self.requests: list[dict] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._readers: dict[asyncio.StreamWriter, asyncio.StreamReader] = {}
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
        self._readers[writer] = reader
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
            self._readers.pop(writer, None)
            writer.close()

    async def _respond(self, writer: asyncio.StreamWriter, stream: bool) -> bool:
        behaviour = self.behaviour
        if behaviour == "hang":
            # Until the caller gives up and closes: a call that is abandoned but never closed would
            # stay in flight here, which is how a leaked connection shows.
            await self._readers[writer].read()
            return False
        if behaviour == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close
            return False
        if behaviour == "trickle":
            closed = asyncio.ensure_future(self._readers[writer].read())  # the caller giving up
            try:
                for byte in _completion(stream):
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.wait([closed], timeout=self.trickle_interval_s)
                    if closed.done():
                        break
            finally:
                closed.cancel()
            return False
        if behaviour in _ERRORS:
            status, kind = _ERRORS[behaviour]
            body = b'{"error": {"message": "candidate exploded", "type": "' + kind + b'"}}'
            writer.write(_json_response(status, body, b"retry-after: 0\r\n" if behaviour != "error500" else b""))
        elif behaviour == "redirect":
            writer.write(b"HTTP/1.1 307 Temporary Redirect\r\nlocation: " + self.redirect_to.encode()
                         + b"/chat/completions\r\ncontent-length: 0\r\n\r\n")
        elif behaviour == "quote_request":
            quoted = orjson.dumps(self.requests[-1]).decode()
            body = orjson.dumps({"error": {"message": f"invalid request: {quoted}", "type": "invalid_request_error"}})
            writer.write(_json_response(b"400 Bad Request", body))
        else:
            writer.write(_completion(stream))
        await writer.drain()
        return True
