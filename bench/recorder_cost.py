"""What the capture recorder spends per exchange: frames decoded, rows built, batches inserted.

Replays exchanges shaped like the benchmark's (the simulated upstream's chat completion, or its
stream of about 20 events) through the recorder's own pipeline (`ExchangeFrameReader`, the row
builder with the default redaction, `CaptureStore.insert_capture` in batches of 200) in one
process, and reports its CPU (user and system) per exchange. No socket and no threads: this is
the recorder's work alone, without the scheduling around it.

    python bench/recorder_cost.py                      # json and stream, 10,000 exchanges each
    python bench/recorder_cost.py --baseline OLD_TREE  # the same, first with an older checkout

`--baseline` runs the same replay, in a subprocess, against the shadowtap at OLD_TREE (a directory
holding `core/`, `proxy/`, ...; for instance `git archive COMMIT | tar -x -C OLD_TREE`), so the two
are compared in one run on the same machine state. Rows are counted after each run: every
exchange replayed must be stored.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

CONTENT = ("Sure! Here is a concise overview of how an API proxy for large language models works. The proxy "
           "accepts an OpenAI-compatible request, checks the caller's key and budget, picks a deployment for the "
           "requested model, translates the payload to the provider's format if needed, forwards it upstream "
           "over a pooled HTTP connection, and then streams or returns the answer to the client while recording "
           "usage, latency and cost for later reporting.")
REQUEST = {"model": "fake-model", "messages": [{"role": "system", "content": "You are a helpful assistant."},
                                               {"role": "user", "content": "Explain how an LLM API proxy works."}],
           "max_tokens": 256, "temperature": 0.7}
BASE = {"id": "chatcmpl-fake0123456789abcdef", "created": 1796679515, "model": "fake-model",
        "system_fingerprint": "fp_fake"}
USAGE = {"prompt_tokens": 25, "completion_tokens": 110, "total_tokens": 135}


def response_chunks(stream: bool) -> list[bytes]:
    if not stream:
        return [json.dumps({**BASE, "object": "chat.completion", "usage": USAGE, "choices": [
            {"index": 0, "message": {"role": "assistant", "content": CONTENT}, "finish_reason": "stop"}]}).encode()]
    step = len(CONTENT) // 18 + 1
    deltas = [{"role": "assistant", "content": ""}] + [{"content": CONTENT[i:i + step]}
                                                      for i in range(0, len(CONTENT), step)]
    events = [{**BASE, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}
              for delta in deltas]
    events.append({**BASE, "object": "chat.completion.chunk",
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return [b"data: " + json.dumps(event).encode() + b"\n\n" for event in events] + [b"data: [DONE]\n\n"]


def replay(count: int, stream: bool, batch: int) -> dict:
    sys.modules.setdefault("pandas", None)  # as the recorder does: sqlite-utils would import it
    from shadowtap.core.store import CaptureStore
    from shadowtap.proxy.capture.builder_process import build_each, row_builder
    from shadowtap.proxy.capture.frames import ExchangeFrameReader, encode_exchange
    from shadowtap.proxy.capture.record import CaptureRows
    from shadowtap.proxy.capture.recorder_start import RowBuilderSettings
    from shadowtap.proxy.exchange import RawExchange, new_exchange_id

    body = json.dumps({**REQUEST, "stream": True} if stream else REQUEST).encode()
    chunks = response_chunks(stream)
    content_type = b"text/event-stream" if stream else b"application/json"
    frames = bytearray()
    for _ in range(count):
        start = time.perf_counter()
        exchange = RawExchange(
            id=new_exchange_id(), started_at=time.time(), t_start=start, method="POST", path="/v1/chat/completions",
            query="", request_body=body, status=200, response_chunks=chunks, t_end=start + 0.0003,
            request_headers=[(b"host", b"127.0.0.1:9912"), (b"content-type", b"application/json"),
                             (b"authorization", b"Bearer sk-bench"), (b"content-length", str(len(body)).encode())],
            response_headers=[(b"content-type", content_type), (b"date", b"Mon, 07 Dec 2026 21:40:00 GMT"),
                              (b"server", b"fake-upstream")],
            chunk_times=[start + 0.0001 * (index + 1) for index in range(len(chunks))])
        for part in encode_exchange(exchange):
            frames += part
    settings = RowBuilderSettings(emails=True, phones=True, card_numbers=True, patterns=(),
                                  replacement="[REDACTED:{kind}]", client_key_salt=b"salt", max_body_bytes=1 << 20)
    build = row_builder(settings).build_rows
    store = CaptureStore.open(os.path.join(tempfile.mkdtemp(prefix="recorder-cost-"), "capture.db"))
    reader = ExchangeFrameReader()
    pending: list = []
    before = os.times()
    for offset in range(0, len(frames), 1 << 20):
        pending += reader.feed(bytes(frames[offset:offset + (1 << 20)]))
        while len(pending) >= batch or (pending and offset + (1 << 20) >= len(frames)):
            rows = CaptureRows.merge(build_each(build, pending[:batch]))
            del pending[:batch]
            store.insert_capture(rows.exchanges, rows.shadows)
    after = os.times()
    stored = store.count_exchanges()
    store.close()
    return {"mode": "stream" if stream else "json", "exchanges": count, "stored": stored,
            "user_ms": (after.user - before.user) * 1000 / count,
            "system_ms": (after.system - before.system) * 1000 / count}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exchanges", type=int, default=10_000)
    parser.add_argument("--modes", default="json,stream")
    parser.add_argument("--batch", type=int, default=200, help="rows per transaction ([store] batch_size)")
    parser.add_argument("--baseline", metavar="OLD_TREE", help="also measure the shadowtap checked out there, first")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a mode, run in this process; prints JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(replay(args.exchanges, args.one == "stream", args.batch)))
        return 0
    trees = ([("baseline", args.baseline)] if args.baseline else []) + [("this tree", None)]
    failed = False
    print("| tree | mode | exchanges stored | CPU ms per exchange (user + system) |\n|---|---|---|---|")
    for mode in args.modes.split(","):
        for label, tree in trees:
            result = json.loads(subprocess.run(
                [sys.executable, __file__, "--one", mode, "--exchanges", str(args.exchanges), "--batch",
                 str(args.batch)], env=_env_for(tree), check=True, capture_output=True, text=True).stdout)
            failed |= result["stored"] != result["exchanges"]
            total = result["user_ms"] + result["system_ms"]
            print(f"| {label} | {mode} | {result['stored']} of {result['exchanges']} | {total:.3f} "
                  f"({result['user_ms']:.3f} + {result['system_ms']:.3f}) |")
    print(f"\nload average: {open('/proc/loadavg').read().split()[0]}" if os.path.exists("/proc/loadavg") else "")
    return 1 if failed else 0


def _env_for(tree: str | None) -> dict:
    """The environment that imports `shadowtap` from `tree`: a folder of links, named as the installed
    package maps its parts, put first on the path."""
    env = dict(os.environ)
    if tree is None:
        return env
    links = tempfile.mkdtemp(prefix="recorder-cost-tree-")
    os.mkdir(os.path.join(links, "shadowtap"))
    for part in ("core", "proxy", "evaluators", "replay"):
        os.symlink(os.path.abspath(os.path.join(tree, part)), os.path.join(links, "shadowtap", part))
    env["PYTHONPATH"] = links + os.pathsep + env.get("PYTHONPATH", "")
    return env


if __name__ == "__main__":
    sys.exit(main())
