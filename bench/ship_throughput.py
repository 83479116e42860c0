"""Shipping throughput: exchanges per second copied into PostgreSQL from two replicas' spools at once,
and `report` time over the shipped store on each backend.

Builds two SQLite spools of realistic captured exchanges (a chat request and answer, headers,
usage, tags; one shadow row per exchange) in a temporary directory, then runs two shippers, one
process per spool as in production, into a fresh schema of the PostgreSQL server at --url
(default: the machine's, 127.0.0.1:5432, database `test`; the schema is dropped afterwards).
Reports rows and exchanges per second over the wall time of both shippers, then the time of
`build_report` (what `shadowtap report` runs) over the same data in SQLite and in PostgreSQL.

With --compare, ships the same two spools each way in turn, each round into a fresh schema: as
every batch went before (COPY into a temporary table, then `insert ... select ... on conflict`,
reading the spool between two writes), with the direct COPY alone (straight into the table; the
staging way only for a batch holding a row shipped before), and as now (the direct COPY, and the
next batch read from the spool while the current one ships); it reports the ratios of the
medians, in exchanges per second and per CPU second (shippers and their PostgreSQL backends).

    python bench/ship_throughput.py [--exchanges 50000] [--batch-size 5000] [--url postgresql://...]
                                    [--compare --rounds 3] [--no-report]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from shadowtap.core.store import CaptureStore, Store  # noqa: E402

# How a shipper writes and reads: `before` is how every batch went until 7 December 2026 (COPY into
# a staging table, then `insert ... select ... on conflict`; the spool read between two writes).
WAYS = {"before": {"direct": False, "prefetch": False},
        "direct": {"direct": True, "prefetch": False},
        "now": {"direct": True, "prefetch": True}}


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


def ship(spool: str, url: str, batch_size: int, barrier=None, times=None, way: str = "now") -> None:
    """One replica's shipper; with `barrier`, starts with the others (after every interpreter has
    started and connected) and puts (start, end) on `times`."""
    from shadowtap.core.ship.shipper import Shipper

    store = CaptureStore.open(spool)
    shipper = Shipper(store, lambda: CaptureStore.open(url), batch_size=batch_size, **WAYS[way])
    shipper.backlog()  # connects
    backend = shipper._target.backend.conn.info.backend_pid  # type: ignore[union-attr]
    if barrier is not None:
        barrier.wait()
    started, cpu, server_cpu = time.time(), time.process_time(), backend_cpu_s(backend)
    shipper.ship_once()
    if times is not None:
        times.put((started, time.time(), time.process_time() - cpu, backend_cpu_s(backend) - server_cpu))
    shipper.close()


def backend_cpu_s(pid: int) -> float:
    """CPU seconds of a PostgreSQL backend process, when it runs on this machine (else 0)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_report(target: str) -> float:
    from shadowtap.evaluators.report.build import build_report

    store = Store.open(target)
    started = time.perf_counter()
    build_report(store.reports, store="bench")
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed


def ship_both(spools: list[Path], url: str, batch_size: int, *, way: str) -> tuple[float, float, float]:
    """Ship every spool into a fresh schema at once, one process each: seconds from the first
    shipper's start to the last one's end (interpreter start-up and connecting left out), and the
    CPU seconds the shippers and their PostgreSQL backends used, which other load on the machine
    changes far less than the wall time."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"create schema {schema}")  # type: ignore[arg-type]
    target = schema_url(url, schema)
    try:
        CaptureStore.open(target).close()  # migrate once, outside the timing
        context = multiprocessing.get_context("spawn")
        barrier, times = context.Barrier(len(spools)), context.Queue()
        workers = [context.Process(target=ship, args=(str(spool), target, batch_size, barrier, times, way))
                   for spool in spools]
        for worker in workers:
            worker.start()
        spans = [times.get() for _ in workers]
        for worker in workers:
            worker.join()
        wall = max(span[1] for span in spans) - min(span[0] for span in spans)
        return wall, sum(span[2] for span in spans), sum(span[3] for span in spans)
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"drop schema {schema} cascade")  # type: ignore[arg-type]


def schema_url(url: str, schema: str) -> str:
    return f"{url}?options=-csearch_path%3D{schema}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=50_000, help="exchanges per replica")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--compare", action="store_true", help="ship both ways in turn and report the ratio")
    parser.add_argument("--rounds", type=int, default=3, help="with --compare: rounds of each way")
    parser.add_argument("--no-report", action="store_true", help="leave out the report timings")
    args = parser.parse_args()
    exchanges = 2 * args.exchanges
    with tempfile.TemporaryDirectory() as directory:
        spools = [Path(directory) / f"replica{index}.db" for index in range(2)]
        started = time.perf_counter()
        for index, spool in enumerate(spools):
            build_spool(spool, args.exchanges, index)
        print(f"built 2 spools of {args.exchanges} exchanges (+1 shadow each) in "
              f"{time.perf_counter() - started:.1f} s")
        ways = list(WAYS) if args.compare else ["now"]
        rates: dict[str, list[float]] = {name: [] for name in ways}
        cpu: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(args.rounds if args.compare else 1):
            for name in ways:
                elapsed, client_s, server_s = ship_both(spools, args.url, args.batch_size, way=name)
                rates[name].append(exchanges / elapsed)
                cpu[name].append(client_s + server_s)
                print(f"{name}: shipped {exchanges} exchanges and {exchanges} shadow rows from 2 replicas in "
                      f"{elapsed:.2f} s: {exchanges / elapsed:,.0f} exchanges/s ({2 * exchanges / elapsed:,.0f} "
                      f"rows/s), batch size {args.batch_size}; CPU: shippers {client_s:.2f} s, PostgreSQL "
                      f"{server_s:.2f} s ({exchanges / (client_s + server_s):,.0f} exchanges per CPU second)")
        if args.compare:
            medians = {name: statistics.median(values) for name, values in rates.items()}
            per_cpu = {name: exchanges / statistics.median(values) for name, values in cpu.items()}
            for name in ways[1:]:
                print(f"median exchanges/s: before {medians['before']:,.0f}, {name} {medians[name]:,.0f}: "
                      f"{name}/before = {medians[name] / medians['before']:.2f}; exchanges per CPU second: before "
                      f"{per_cpu['before']:,.0f}, {name} {per_cpu[name]:,.0f}: "
                      f"{name}/before = {per_cpu[name] / per_cpu['before']:.2f}")
        if not args.no_report:
            report_timings(spools, args)
        print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")


def report_timings(spools: list[Path], args: argparse.Namespace) -> None:
    """`build_report` over one spool in SQLite, and over both shipped into PostgreSQL."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(args.url, autocommit=True) as admin:
        admin.execute(f"create schema {schema}")  # type: ignore[arg-type]
    target = schema_url(args.url, schema)
    try:
        for spool in spools:
            ship(str(spool), target, args.batch_size)
        print(f"report over {args.exchanges} exchanges: SQLite {timed_report(str(spools[0])):.2f} s")
        print(f"report over {2 * args.exchanges} exchanges: PostgreSQL {timed_report(target):.2f} s")
    finally:
        with psycopg.connect(args.url, autocommit=True) as admin:
            admin.execute(f"drop schema {schema} cascade")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
