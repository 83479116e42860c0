"""`shadowtap report` and `shadowtap eval` at 1,000,000 exchanges, on SQLite or PostgreSQL.

Builds a store of N exchanges (default 1,000,000) shaped like real traffic over a few days: three
tasks (qa with a retrieved context, extract with a JSON schema, chat), three risk tiers and a team
tag; two candidates shadowing a sampled share (cand-small 30%, cand-large 15%) and the primary's
twin 5%, with errors, timeouts and skips; agreement, grounding, freshness and contract scores as
`shadowtap eval` writes them, except on the newest `--pending` exchanges, which are left to score.
Rows go in with executemany (SQLite) or COPY (PostgreSQL, into a fresh schema dropped afterwards):
the generation is not what is measured.

Then it times, as separate processes (what a user waits for, interpreter start-up included):

- `shadowtap report --json --store TARGET` over every exchange;
- `shadowtap eval --store TARGET --since SLICE --evaluator ...` over the pending slice, reported
  per 1,000 answers in it (the primary's, and every shadow's that answered).

Each line gives wall and CPU seconds (the child process's own, with the helper it forks for a large
report: on a shared machine they move far less with the load than the wall time; PostgreSQL's
server time is not in them) and the report's peak RSS; the load average is printed before and
after. The report uses a second core where it can (a forked child for half the candidates, and on
PostgreSQL the server reading scores and shadow rows beside the client), so its wall time can be
below its CPU time. `--reuse` times the report again over a store kept with `--keep` (no eval: its
slice was scored by the first run).

    python bench/report_scale.py [--exchanges 1000000] [--backend sqlite|postgres]
                                 [--url postgresql://127.0.0.1:5432/test] [--keep PATH] [--reuse TARGET]
                                 [--profile FILE] [--drop SCHEMA_URL]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL_REPORT_S = 10.0
START = datetime(2026, 3, 2, tzinfo=UTC)
SPAN = timedelta(days=4)
CANDIDATES = (("cand-small", 0.30, 0.6), ("cand-large", 0.15, 1.6), ("primary_twin", 0.05, 1.0))
TASKS = (("qa", 50), ("extract", 25), ("chat", 25))
TIERS = (("low", 60), ("medium", 30), ("high", 10))
TEAMS = ("search", "support", "billing")
EVALUATOR_VERSIONS = {"agreement": "2", "grounding": "1", "freshness": "1", "contract": "1"}
EVAL_EVALUATORS = "agreement,grounding,freshness,contract"
ERRORS = (("APIConnectionError", "Connection error."), ("RateLimitError", "Rate limit reached for requests."),
          ("BadRequestError", "litellm.BadRequestError: context length exceeded. Reduce the prompt."))
CONTEXT = ("The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris. It was "
           "completed in 1889 and is 330 metres tall.")

EXCHANGE_COLUMNS = ("id", "started_at", "method", "path", "query", "endpoint", "model", "response_model",
                    "is_stream", "status", "request_json", "shadowtap_metadata", "task", "risk_tier", "tags",
                    "latency_ms", "ttft_ms", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd",
                    "response_text", "finish_reason", "client_disconnected", "stream_incomplete",
                    "request_unparseable", "response_unparseable")
SHADOW_COLUMNS = ("id", "exchange_id", "candidate", "model", "is_twin", "outcome", "skip_reason", "started_at",
                  "latency_ms", "ttft_ms", "is_stream", "response_text", "finish_reason", "prompt_tokens",
                  "completion_tokens", "total_tokens", "cost_usd", "error_class", "error_message")
SCORE_COLUMNS = ("id", "exchange_id", "source", "evaluator", "evaluator_version", "outcome", "value", "label",
                 "details", "scored_at", "duration_ms")


def _weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([name for name, _ in choices], [weight for _, weight in choices])[0]


def generate(count: int, pending: int, seed: int = 14) -> Iterator[tuple[str, tuple]]:
    """("exchanges" | "shadows" | "scores", row) in insertion order, oldest exchange first."""
    rng = random.Random(seed)
    step = SPAN / count
    scored_below = count - pending
    answers = ("The Eiffel Tower was completed in 1889.", "It is 330 metres tall and stands in Paris.",
               "The tower opened in 1889 on the Champ de Mars.", "I am not sure; it may be about 300 metres.")
    for index in range(count):
        exchange_id = f"ex{index:07d}"
        started = (START + step * index).isoformat(timespec="microseconds")
        task, tier = _weighted(rng, TASKS), _weighted(rng, TIERS)
        stream = rng.random() < 0.4
        request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"question {index % 997}"}]}
        metadata = None
        if task == "qa":
            updated = START - timedelta(days=rng.choice((2, 30, 400)))
            metadata = orjson.dumps({"contexts": [{"id": f"kb-{index % 97}", "text": CONTEXT, "version": "v3",
                                                   "updated_at": updated.isoformat()}]}).decode()
        if task == "extract":
            request["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {
                "type": "object", "required": ["answer"], "properties": {"answer": {"type": "string"}}}}}
        text = orjson.dumps({"answer": "1889"}).decode() if task == "extract" else rng.choice(answers)
        latency = round(rng.lognormvariate(6.2, 0.5), 3)
        prompt, completion = rng.randint(120, 600), rng.randint(8, 60)
        yield "exchanges", (
            exchange_id, started, "POST", "/v1/chat/completions", "", "chat.completions", "gpt-4o-mini",
            "gpt-4o-mini-2024-07-18", int(stream), 200, orjson.dumps(request).decode(), metadata, task, tier,
            orjson.dumps({"team": TEAMS[index % 3]}).decode(), latency,
            round(latency * 0.2, 3) if stream else None, prompt, completion, prompt + completion,
            round(prompt * 0.15e-6 + completion * 0.6e-6, 9), text, "stop", 0, 0, 0, 0)
        scored = index < scored_below
        primary_scored = False
        for candidate, share, speed in CANDIDATES:
            if rng.random() >= share:
                continue
            outcome = _weighted(rng, (("ok", 92), ("error", 4), ("timeout", 1), ("skipped", 3)))
            shadow_id = f"{exchange_id}:{candidate}"
            common = (shadow_id, exchange_id, candidate, f"openai/{candidate}", int(candidate == "primary_twin"),
                      outcome)
            if outcome != "ok":
                error = rng.choice(ERRORS) if outcome == "error" else ("TimeoutError", "candidate timed out")
                yield "shadows", (*common, "over_budget" if outcome == "skipped" else None, started, None, None,
                                  int(stream), None, None, None, None, None, None,
                                  *(error if outcome in ("error", "timeout") else (None, None)))
                continue
            shadow_latency = round(latency * speed * rng.uniform(0.7, 1.3), 3)
            answer = text if task == "extract" and rng.random() < 0.9 else rng.choice(answers)
            ttft = round(shadow_latency * 0.2, 3) if stream else None
            yield "shadows", (*common, None, started, shadow_latency, ttft, int(stream), answer, "stop", prompt,
                              completion, prompt + completion,
                              round((prompt * 0.15e-6 + completion * 0.6e-6) * speed, 9), None, None)
            if not scored:
                continue
            value = 1.0 if answer == text else round(rng.uniform(0.3, 0.95), 4)
            if candidate == "primary_twin":
                yield "scores", _score(exchange_id, "primary", "agreement", value, rng,
                                       {"method": "prose", "against": "primary_twin", "baseline": "primary_twin"})
                continue
            yield "scores", _score(exchange_id, candidate, "agreement", value, rng,
                                   {"method": "json" if task == "extract" else "prose", "against": "primary"})
            if task == "qa":
                yield "scores", _score(exchange_id, candidate, "grounding", round(rng.betavariate(6, 2), 4), rng)
                primary_scored = True
            if task == "extract":
                yield "scores", _score(exchange_id, candidate, "contract", float(answer == text), rng,
                                       label="valid" if answer == text else "invalid")
                primary_scored = True
        if primary_scored or (scored and rng.random() < 0.2):
            if task == "qa":
                yield "scores", _score(exchange_id, "primary", "grounding", round(rng.betavariate(7, 2), 4), rng)
                stale = rng.random() < 0.3
                yield "scores", _score(exchange_id, "primary", "freshness", 0.0 if stale else 1.0, rng,
                                       label="stale" if stale else "fresh")
            elif task == "extract":
                yield "scores", _score(exchange_id, "primary", "contract", 1.0, rng, label="valid")


def _score(exchange_id: str, source: str, evaluator: str, value: float, rng: random.Random,
           details: dict | None = None, label: str | None = None) -> tuple:
    return (f"{exchange_id}:{source}:{evaluator}", exchange_id, source, evaluator, EVALUATOR_VERSIONS[evaluator],
            "score", value, label, orjson.dumps(details or {}).decode(), "2026-03-07T00:00:00+00:00",
            round(rng.uniform(0.05, 2.0), 3))


COLUMNS = {"exchanges": EXCHANGE_COLUMNS, "shadows": SHADOW_COLUMNS, "scores": SCORE_COLUMNS}


def batches(count: int, pending: int, size: int = 20_000) -> Iterator[dict[str, list[tuple]]]:
    batch: dict[str, list[tuple]] = {table: [] for table in COLUMNS}
    held = 0
    for table, row in generate(count, pending):
        batch[table].append(row)
        held += 1
        if held >= size:
            yield batch
            batch, held = {table: [] for table in COLUMNS}, 0
    yield batch


def fill_sqlite(path: Path, count: int, pending: int) -> dict[str, int]:
    import sqlite3

    from shadowtap.core.store import Store

    Store.open(str(path)).close()  # migrated by the store itself
    conn = sqlite3.connect(path)
    conn.execute("pragma synchronous = off")
    totals = dict.fromkeys(COLUMNS, 0)
    with conn:
        for batch in batches(count, pending):
            for table, rows in batch.items():
                columns = COLUMNS[table]
                conn.executemany(f"insert into {table} ({', '.join(columns)}) values "
                                 f"({', '.join('?' for _ in columns)})", rows)
                totals[table] += len(rows)
    conn.execute("analyze")
    conn.close()
    return totals


def fill_postgres(url: str, count: int, pending: int) -> dict[str, int]:
    import psycopg

    from shadowtap.core.store import Store

    Store.open(url).close()
    totals = dict.fromkeys(COLUMNS, 0)
    with psycopg.connect(url, autocommit=True) as conn:
        for batch in batches(count, pending):
            for table, rows in batch.items():
                with conn.cursor().copy(f"copy {table} ({', '.join(COLUMNS[table])}) from stdin") as copy:
                    for row in rows:
                        copy.write_row(row)
                totals[table] += len(rows)
        conn.execute("analyze")
    return totals


def schema_url(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def drop_schema(target: str) -> None:
    import psycopg

    url, _, options = target.partition("?options=-csearch_path%3D")
    if not options.startswith("bench_report_"):
        raise SystemExit(f"not a schema URL this benchmark made: {target}")
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"drop schema {options} cascade")  # type: ignore[arg-type]


def timed(command: list[str]) -> tuple[float, float, int, str]:
    """(wall seconds, child CPU seconds, child peak RSS in MB, stdout) of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0 and not (done.returncode == 1 and done.stdout):  # eval: 1 = some evaluator failed
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, after.ru_maxrss // 1024, done.stdout


def shadowtap(*args: str) -> list[str]:
    return [sys.executable, "-m", "shadowtap.core.cli", *args]


def slice_start(count: int, pending: int) -> str:
    return (START + (SPAN / count) * (count - pending)).isoformat(timespec="microseconds")


def measure(target: str, count: int, pending: int, profile: str | None) -> dict:
    results: dict = {}
    report = shadowtap("report", "--json", "--store", target)
    wall, cpu, rss, out = timed(report)
    document = orjson.loads(out)
    results["report"] = {"command": " ".join(report), "wall_s": wall, "cpu_s": cpu, "peak_rss_mb": rss,
                         "exchanges": document["exchanges"],
                         "candidates": [c["name"] for c in document["candidates"]]}
    if profile:
        timed([sys.executable, "-m", "cProfile", "-o", profile, "-m", "shadowtap.core.cli", "report", "--json",
               "--store", target])
    if pending:
        answers = pending_answers(target, slice_start(count, pending))
        command = shadowtap("eval", "--json", "--store", target, "--since", slice_start(count, pending),
                            "--evaluator", EVAL_EVALUATORS)
        wall, cpu, rss, out = timed(command)
        run = orjson.loads(out)
        scored = _answers_scored(run)
        results["eval"] = {"command": " ".join(command), "wall_s": wall, "cpu_s": cpu, "peak_rss_mb": rss,
                           "answers": answers, "scores_written": scored,
                           "s_per_1000_answers": wall / answers * 1000 if answers else None}
    return results


def pending_answers(target: str, since: str) -> int:
    """Answers in the pending slice: the primary's, and every shadow's that answered (twin included)."""
    from shadowtap.core.store import Store

    store = Store.open(target)
    try:
        sql = store.captures.sql
        primary = sql.execute("select count(*) from exchanges where started_at >= ?", [since]).fetchone()[0]
        shadows = sql.execute("select count(*) from shadows where outcome = 'ok' and exchange_id in "
                              "(select id from exchanges where started_at >= ?)", [since]).fetchone()[0]
    finally:
        store.close()
    return primary + shadows


def _answers_scored(run: dict) -> int:
    """Score rows the eval run wrote (scores, not-applicable and errors), from its --json document."""
    counts = run["run"]
    return counts["scored"] + counts["not_applicable"] + counts["errors"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exchanges", type=int, default=1_000_000)
    parser.add_argument("--pending", type=int, default=2_000, help="newest exchanges left unscored for eval")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--url", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--keep", metavar="PATH", help="sqlite: build the store at PATH and keep it; postgres: "
                                                       "keep the schema (give any PATH; its URL is printed)")
    parser.add_argument("--reuse", metavar="TARGET", help="time the report over a kept store (path or schema URL)")
    parser.add_argument("--drop", metavar="URL", help="drop the kept schema of this schema URL, and stop")
    parser.add_argument("--profile", metavar="FILE", help="also write a cProfile of one report run to FILE")
    args = parser.parse_args(argv)
    if args.drop:
        drop_schema(args.drop)
        return 0

    load = os.getloadavg()
    print(f"# machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
          f"Python {platform.python_version()}", flush=True)
    schema = None
    with tempfile.TemporaryDirectory(prefix="report-scale-") as tmp:
        if args.reuse:
            target = args.reuse
        elif args.backend == "sqlite":
            target = args.keep or str(Path(tmp) / "store.db")
        else:
            import psycopg

            schema = f"bench_report_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(args.url, autocommit=True) as admin:
                admin.execute(f"create schema {schema}")  # type: ignore[arg-type]
            target = schema_url(args.url, schema)
        if args.keep and schema is not None:
            print(f"# kept schema: {target}", flush=True)
            schema = None  # the finally below leaves it
        try:
            if not args.reuse:
                started = time.perf_counter()
                fill = fill_sqlite if args.backend == "sqlite" else fill_postgres
                totals = fill(Path(target) if args.backend == "sqlite" else target,  # type: ignore[arg-type]
                              args.exchanges, args.pending)
                print(f"# built {args.backend} store in {time.perf_counter() - started:.1f} s: "
                      + ", ".join(f"{count:,} {table}" for table, count in totals.items()), flush=True)
            results = measure(target, args.exchanges, args.pending if not args.reuse else 0, args.profile)
        finally:
            if schema is not None:
                drop_schema(target)
    report = results["report"]
    load = os.getloadavg()
    print(f"report --json: {report['wall_s']:.1f} s wall, {report['cpu_s']:.1f} s CPU, peak RSS "
          f"{report['peak_rss_mb']} MB over {report['exchanges']:,} exchanges "
          f"({'met' if report['wall_s'] < GOAL_REPORT_S else 'missed'}: goal < {GOAL_REPORT_S:.0f} s)")
    print(f"  $ {report['command']}")
    if "eval" in results:
        ev = results["eval"]
        per = "n/a" if ev["s_per_1000_answers"] is None else f"{ev['s_per_1000_answers']:.2f} s"
        print(f"eval (pending slice, {args.pending:,} exchanges, {ev['answers']:,} answers): {ev['wall_s']:.1f} s "
              f"wall, {ev['cpu_s']:.1f} s CPU, {ev['scores_written']:,} scores written, {per} per 1,000 answers")
        print(f"  $ {ev['command']}")
    print(f"# load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
