"""A fake judge: an OpenAI-compatible /chat/completions endpoint answering ragas' faithfulness prompts.

It answers by the schema each request asks for (instructor puts the JSON schema's title in the system
message), so the order of calls does not matter. Use `.transport` with httpx, or `.serve()` on loopback.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import orjson


def fenced(text: str) -> str:
    return f"Here is the JSON you asked for:\n```json\n{text}\n```\n"


@dataclass
class FakeJudge:
    statements: list[str] = field(default_factory=list)
    verdicts: list[int] = field(default_factory=list)      # 1 supported, 0 not, one per statement
    fence: bool = False                                      # wrap replies in ```json fences
    status: int = 200                                        # anything else: an error body
    verdict_reply: str | None = None                         # replaces the verdicts JSON (bad replies)
    usage: dict | None = field(default_factory=lambda: {"prompt_tokens": 1000, "completion_tokens": 200})
    requests: list[dict] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)

    def reply_for(self, body: dict) -> tuple[int, dict]:
        self.requests.append(body)
        if self.status != 200:
            return self.status, {"error": {"message": "the judge fell over", "type": "server_error"}}
        system = next((m["content"] for m in body.get("messages", []) if m.get("role") == "system"), "")
        if '"title": "NLIStatementOutput"' in system:
            content = self.verdict_reply if self.verdict_reply is not None else orjson.dumps({"statements": [
                {"statement": s, "reason": "stated in the context" if v else "not in the context", "verdict": v}
                for s, v in zip(self.statements, self.verdicts)]}).decode()
        elif '"title": "StatementGeneratorOutput"' in system:
            content = orjson.dumps({"statements": self.statements}).decode()
        else:
            return 400, {"error": {"message": "fake judge: unexpected prompt"}}
        completion = {"id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": 0,
                      "model": body.get("model", "judge"),
                      "choices": [{"index": 0, "finish_reason": "stop",
                                   "message": {"role": "assistant",
                                               "content": fenced(content) if self.fence else content}}]}
        if self.usage is not None:
            completion["usage"] = {**self.usage, "total_tokens": sum(self.usage.values())}
        return 200, completion

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.headers.append(dict(request.headers))
        status, payload = self.reply_for(orjson.loads(request.content))
        return httpx.Response(status, json=payload)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        """Serve on a loopback port; yields the base URL (…/v1)."""
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = orjson.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                judge.headers.append(dict(self.headers))
                status, payload = judge.reply_for(body)
                data = orjson.dumps(payload)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/v1"
        finally:
            server.shutdown()
            server.server_close()
