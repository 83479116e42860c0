"""Shipping throughput: exchanges per second copied into PostgreSQL from two replicas' spools at once,
and `report` time over the shipped store on each backend.

Builds two SQLite spools of realistic captured exchanges (a chat request and answer, headers,
usage, tags; one shadow row per exchange) in a temporary directory, then runs two shippers, one
process per spool as in production, into a fresh schema of the PostgreSQL server at --url
(default: the machine's, 127.0.0.1:5432, database `test`; the schema is dropped afterwards).
Reports rows and exchanges per second over the wall time of both shippers, then the time of
`build_report` (what `shadowtap report` runs) over the same data in SQLite and in PostgreSQL.

    python bench/ship_throughput.py [--exchanges 50000] [--batch-size 5000] [--url postgresql://...]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from shadowtap.core.store import CaptureStore, Store  # noqa: E402


def build_spool(path: Path, count: int, replica: int) -> None:
    from tests.support.factories import raw_exchange, row_builder

    store = CaptureStore.open(path)
    builder = row_builder()
    start = time.time() - count
    for offset in range(0, count, 1000):
        exchanges, shadows = [], []
        for index in range(offset, min(count, offset + 1000)):
            request = {"model": "gpt-4o-mini", "messages": [
                {"role": "system", "content": "Answer from the context."},
                {"role": "user", "content": f"replica {replica} question {index}: what does the context say?"}]}
            row = builder.build(raw_exchange(request=request, started_at=start + index,
                                             request_headers=[(b"content-type", b"application/json"),
                                                              (b"x-shadowtap-tag-team", b"search")]))
            exchanges.append(row)
            shadows.append({"id": f"{row['id']}:small", "exchange_id": row["id"], "candidate": "small",
                            "model": "openai/small", "is_twin": 0, "outcome": "ok", "started_at": row["started_at"],
                            "latency_ms": 80.0, "response_text": "hello from a candidate", "finish_reason": "stop",
                            "prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17, "cost_usd": 0.00001})
        store.insert_capture(exchanges, shadows)
    store.close()


def ship(spool: str, url: str, batch_size: int, barrier=None, times=None) -> None:
    """One replica's shipper; with `barrier`, starts with the others (after every interpreter has
    started and connected) and puts (start, end) on `times`."""
    from shadowtap.core.ship.shipper import Shipper

    store = CaptureStore.open(spool)
    shipper = Shipper(store, lambda: CaptureStore.open(url), batch_size=batch_size)
    shipper.backlog()  # connects
    if barrier is not None:
        barrier.wait()
    started = time.time()
    shipper.ship_once()
    if times is not None:
        times.put((started, time.time()))
    shipper.close()


def timed_report(target: str) -> float:
    from shadowtap.evaluators.report.build import build_report

    store = Store.open(target)
    started = time.perf_counter()
    build_report(store.reports, store="bench")
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=50_000, help="exchanges per replica")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(args.url, autocommit=True) as admin:
        admin.execute(f"create schema {schema}")  # type: ignore[arg-type]
    target = f"{args.url}?options=-csearch_path%3D{schema}"
    try:
        with tempfile.TemporaryDirectory() as directory:
            spools = [Path(directory) / f"replica{index}.db" for index in range(2)]
            started = time.perf_counter()
            for index, spool in enumerate(spools):
                build_spool(spool, args.exchanges, index)
            print(f"built 2 spools of {args.exchanges} exchanges (+1 shadow each) in "
                  f"{time.perf_counter() - started:.1f} s")
            CaptureStore.open(target).close()  # migrate once, outside the timing
            context = multiprocessing.get_context("spawn")
            barrier, times = context.Barrier(len(spools)), context.Queue()
            workers = [context.Process(target=ship, args=(str(spool), target, args.batch_size, barrier, times))
                       for spool in spools]
            for worker in workers:
                worker.start()
            spans = [times.get() for _ in workers]
            for worker in workers:
                worker.join()
            # From the first shipper's start to the last one's end (interpreter start-up left out).
            elapsed = max(end for _, end in spans) - min(start for start, _ in spans)
            exchanges = 2 * args.exchanges
            print(f"shipped {exchanges} exchanges and {exchanges} shadow rows from 2 replicas in {elapsed:.2f} s: "
                  f"{exchanges / elapsed:,.0f} exchanges/s ({2 * exchanges / elapsed:,.0f} rows/s), "
                  f"batch size {args.batch_size}")
            print(f"report over {args.exchanges} exchanges: SQLite {timed_report(str(spools[0])):.2f} s")
            print(f"report over {exchanges} exchanges: PostgreSQL {timed_report(target):.2f} s")
            print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    finally:
        with psycopg.connect(args.url, autocommit=True) as admin:
            admin.execute(f"drop schema {schema} cascade")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
