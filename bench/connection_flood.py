"""Idle connections against the file-descriptor limit: do normal requests still get answered?

The fault run behind issue 12, item 9, as a script: the proxy runs with the usual soft limit of
open files (4,096), a crowd of idle client connections is opened and held (5,000 by default, more
than the limit), and while they are held a batch of normal chat completions is sent. Before
`[server] max_connections`, 189 of 680 normal requests failed for about 10 s, some as 502s stored
as the primary's failure. Printed: how the idle connections fared (still open, closed to make
room, or answered with a 503), the statuses the normal requests got, and the statuses of the
captured exchanges (a 502 there would blame the primary for the proxy's own shortage). Exits 1 if
a normal request failed or an exchange was stored as the primary's failure.

    python bench/connection_flood.py                      # 5,000 idle, 680 normal, about a minute
    python bench/connection_flood.py --idle 1000 --requests 100
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.local_stack import LocalStack  # noqa: E402

QUESTION = {"model": "sim-small", "messages": [{"role": "user", "content": "Where do orders ship from?"}]}


async def hold_idle(host: str, port: int, count: int) -> tuple[list[asyncio.StreamWriter], collections.Counter]:
    """Open `count` connections that send nothing; return those still open a moment later, and
    how many were closed by the proxy (idle ones make room for newer ones at the cap)."""
    outcomes: collections.Counter = collections.Counter()
    opened: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    for _ in range(count):
        try:
            opened.append(await asyncio.open_connection(host, port))
        except OSError as exc:
            outcomes[f"connect failed: {exc.strerror or exc}"] += 1
    outcomes["opened"] = len(opened)
    await asyncio.sleep(2.0)  # closes reach the client as EOF
    held = [writer for reader, writer in opened if not reader.at_eof()]
    answered = [reader for reader, _ in opened if reader.at_eof() and len(reader._buffer)]  # type: ignore[attr-defined]
    outcomes["closed by the proxy"] = len(opened) - len(held)
    outcomes["closed with an answer (a 503)"] = len(answered)
    outcomes["still open"] = len(held)
    return held, outcomes


async def normal_requests(base_url: str, count: int, concurrency: int) -> tuple[collections.Counter, float]:
    statuses: collections.Counter = collections.Counter()
    queue = list(range(count))
    started = time.monotonic()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        async def worker() -> None:
            while queue:
                queue.pop()
                try:
                    response = await client.post(f"{base_url}/v1/chat/completions", json=QUESTION)
                    statuses[str(response.status_code)] += 1
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses, time.monotonic() - started


async def run(args: argparse.Namespace, stack: LocalStack) -> int:
    host, port = "127.0.0.1", int(stack.proxy_url.rsplit(":", 1)[1])
    held, idle_outcomes = await hold_idle(host, port, args.idle)
    statuses, elapsed = await normal_requests(stack.proxy_url, args.requests, args.concurrency)
    for writer in held:
        writer.close()
    captured = await stack.wait_for_captures(args.requests)
    assert stack.store is not None
    stored = collections.Counter(str(row["status"]) for row in stack.store.db.query("select status from exchanges"))

    print(f"idle connections ({args.idle} opened against a proxy whose soft open-file limit is {args.fd_limit}):")
    for outcome, count in idle_outcomes.most_common():
        print(f"  {outcome}: {count}")
    print(f"normal requests ({args.requests}, {args.concurrency} at a time, {elapsed:.1f} s) got:")
    for status, count in statuses.most_common():
        print(f"  {status}: {count}")
    print(f"captured exchanges ({captured}) by status: {dict(stored.most_common())}")
    print(f"machine: {platform.machine()}, {platform.python_version()}; command: {' '.join(sys.argv)}")
    failed = args.requests - statuses.get("200", 0)
    return 1 if failed or any(status in stored for status in ("502", "0")) else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=int, default=5000, help="idle connections to open and hold")
    parser.add_argument("--requests", type=int, default=680, help="normal requests sent while they are held")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--fd-limit", type=int, default=4096, help="the proxy's soft open-file limit")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(args.fd_limit, hard), hard))  # inherited by the proxy
    with tempfile.TemporaryDirectory(prefix="shadowtap-flood-") as workdir:
        stack = LocalStack.start(Path(workdir))
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # room for this script's own sockets
        try:
            return asyncio.run(run(args, stack))
        finally:
            stack.stop()


if __name__ == "__main__":
    sys.exit(main())
