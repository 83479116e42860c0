"""How fast the LLM-free evaluators score a capture store of 10,000 exchanges.

Builds, in a temporary directory, a capture store of realistic rows: each exchange is a RAG chat
request over a HaluEval QA row (its `knowledge` sent as a `shadowtap` context with an id, a
version and an `updated_at`), answered with prose (right, hallucinated, or a sentence around the
right answer), a JSON object under a `response_format` schema, a tool call, a refusal, or an
upstream error. A share of exchanges has shadow rows: two candidates and the primary's twin,
plus some errored and skipped shadows, which hold no answer.

Then it runs `EvalRunner` (what `shadowtap eval` runs) over the store with every registered
evaluator that needs no judge, and reports the wall time of the whole run, including reading
items and writing score rows. The per-evaluator columns come from the runner's own
`duration_ms` per score (time inside applies() and score()). `--direct` also times each
evaluator's score() called in-process over the same items, with no store in the loop.

    python bench/eval_throughput.py [--exchanges 10000] [--evaluators a,b] [--direct] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shadowtap.core.config import ShadowtapConfig  # noqa: E402
from shadowtap.core.store import CaptureStore  # noqa: E402
from shadowtap.core.store.score_store import ScoreStore  # noqa: E402
from shadowtap.evaluators.base import NotApplicable  # noqa: E402
from shadowtap.evaluators.items import iter_items  # noqa: E402
from shadowtap.evaluators.registry import build_evaluators  # noqa: E402
from shadowtap.evaluators.runner import EvalRunner  # noqa: E402

DATA_FILES = (Path("/work/shared/data/halueval_qa_dev.jsonl"), ROOT / "tests" / "data" / "halueval_sample.jsonl",
              ROOT / "proxy" / "demo_data" / "halueval_sample.jsonl")
ANSWER_SCHEMA = {"type": "object", "required": ["answer", "confidence"], "additionalProperties": False,
                 "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}}}
LOOKUP_TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {
    "type": "object", "required": ["query"],
    "properties": {"query": {"type": "string"}, "top_k": {"type": "integer"}}}}}
REFUSALS = ("I'm sorry, but I can't help with that request.", "I cannot provide that information.",
            "As an AI, I am not able to answer this question.")
PRICE_IN, PRICE_OUT = 0.15e-6, 0.6e-6


def load_halueval() -> list[dict]:
    for path in DATA_FILES:
        if path.exists():
            return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    raise SystemExit("no HaluEval data file found: " + ", ".join(map(str, DATA_FILES)))


def prose_answer(row: dict, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.4:
        return row["right_answer"]
    if roll < 0.7:
        return row["hallucinated_answer"]
    return f"Based on the provided context, the answer is {row['right_answer']}. {row['knowledge'].split('.')[0]}."


def answer_fields(row: dict, kind: str, rng: random.Random) -> dict:
    """Text, tool calls, finish reason for one answer of a given kind."""
    if kind == "json":
        answer = row["right_answer"] if rng.random() < 0.7 else row["hallucinated_answer"]
        return {"response_text": json.dumps({"answer": answer, "confidence": round(rng.random(), 2)}),
                "finish_reason": "stop"}
    if kind == "tool":
        arguments = {"query": row["question"][:60]} | ({"top_k": rng.choice([3, 5])} if rng.random() < 0.5 else {})
        call = {"id": f"call_{rng.randrange(10**9)}", "type": "function",
                "function": {"name": "lookup", "arguments": json.dumps(arguments)}}
        return {"response_text": None, "response_tool_calls": json.dumps([call]), "finish_reason": "tool_calls"}
    if kind == "refusal":
        return {"response_text": rng.choice(REFUSALS), "finish_reason": "stop"}
    return {"response_text": prose_answer(row, rng), "finish_reason": "stop"}


def usage_fields(text: str | None, rng: random.Random, speed: float) -> dict:
    prompt = rng.randint(120, 600)
    completion = max(1, len((text or "x").split()) * 4 // 3)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "latency_ms": round(rng.lognormvariate(6.2, 0.5) * speed, 3),
            "cost_usd": round((prompt * PRICE_IN + completion * PRICE_OUT) * speed, 9)}


def build_rows(rows: list[dict], count: int, seed: int) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    exchanges, shadows = [], []
    for index in range(count):
        row = rows[index % len(rows)]
        started = start + timedelta(seconds=30 * index)
        kind = rng.choices(["prose", "json", "tool", "refusal", "error"], [70, 12, 10, 5, 3])[0]
        request: dict = {"model": "gpt-4o-mini", "messages": [
            {"role": "system", "content": "Answer from the retrieved context only."},
            {"role": "user", "content": row["question"]}]}
        if kind == "json":
            request["response_format"] = {"type": "json_schema",
                                          "json_schema": {"name": "answer", "schema": ANSWER_SCHEMA}}
        if kind == "tool":
            request["tools"] = [LOOKUP_TOOL]
        updated = started - timedelta(days=rng.choice([2, 30, 120, 400]))
        metadata = {"contexts": [{"id": f"kb-{index % len(rows)}", "text": row["knowledge"], "version": "v3",
                                  "updated_at": updated.isoformat()}]}
        exchange_id = f"ex{index:06d}"
        answer = answer_fields(row, "prose" if kind == "error" else kind, rng)
        exchange = {
            "id": exchange_id, "started_at": started.isoformat(timespec="microseconds"), "method": "POST",
            "path": "/v1/chat/completions", "query": "", "endpoint": "chat.completions", "model": "gpt-4o-mini",
            "response_model": "gpt-4o-mini-2024-07-18", "is_stream": int(rng.random() < 0.4),
            "status": 500 if kind == "error" else 200, "request_json": json.dumps(request),
            "shadowtap_metadata": json.dumps(metadata), "task": "qa", "tags": json.dumps({"team": "search"}),
            "client_disconnected": 0, "stream_incomplete": 0, "request_unparseable": 0, "response_unparseable": 0,
            "capture_truncated": 0, **answer, **usage_fields(answer.get("response_text"), rng, 1.0),
        }
        if kind == "error":
            exchange.update(response_text=None, finish_reason=None, upstream_error="upstream returned 500")
        if exchange["is_stream"]:
            exchange["ttft_ms"] = round(exchange["latency_ms"] * rng.uniform(0.1, 0.4), 3)
        exchanges.append(exchange)
        # (candidate, share of exchanges it shadows, its latency and cost relative to the primary)
        for candidate, share, speed in (("cand-small", 0.5, 0.6), ("cand-large", 0.25, 1.6),
                                        ("primary_twin", 0.1, 1.0)):
            roll = rng.random()
            if roll >= share:
                continue
            outcome = rng.choices(["ok", "error", "skipped"], [90, 5, 5])[0]
            shadow = {"id": f"{exchange_id}:{candidate}", "exchange_id": exchange_id, "candidate": candidate,
                      "model": f"openai/{candidate}", "is_twin": int(candidate == "primary_twin"), "outcome": outcome,
                      "started_at": exchange["started_at"], "is_stream": exchange["is_stream"]}
            if outcome == "ok":
                fields = answer_fields(row, kind if kind != "error" else "prose", rng)
                shadow.update(fields, **usage_fields(fields.get("response_text"), rng, speed))
                if shadow["is_stream"]:
                    shadow["ttft_ms"] = round(shadow["latency_ms"] * rng.uniform(0.1, 0.4), 3)
            elif outcome == "error":
                shadow.update(error_class="TimeoutError", error_message="candidate timed out")
            else:
                shadow["skip_reason"] = "over_budget"
            shadows.append(shadow)
    return exchanges, shadows


def build_store(path: Path, count: int, seed: int) -> CaptureStore:
    exchanges, shadows = build_rows(load_halueval(), count, seed)
    store = CaptureStore.open(path)
    for offset in range(0, len(exchanges), 1000):
        store.insert_exchanges(exchanges[offset:offset + 1000])
    with store.db.conn:
        store.db["shadows"].insert_all(shadows, batch_size=1000)
    return store


def run_with_runner(store: CaptureStore, evaluators: list, config: ShadowtapConfig) -> tuple[float, dict]:
    per_evaluator: dict[str, Counter] = defaultdict(Counter)
    busy_ms: dict[str, float] = defaultdict(float)

    def on_scored(row: dict) -> None:
        per_evaluator[row["evaluator"]][row["outcome"]] += 1
        busy_ms[row["evaluator"]] += row["duration_ms"]

    runner = EvalRunner.from_config(ScoreStore(store), evaluators, config)
    started = time.perf_counter()
    asyncio.run(runner.run(on_scored=on_scored))
    return time.perf_counter() - started, {"outcomes": per_evaluator, "busy_ms": busy_ms}


def run_direct(store: CaptureStore, evaluators: list, config: ShadowtapConfig) -> dict[str, tuple[int, float]]:
    """Each evaluator's score() over every item, in-process: (calls, seconds)."""
    items = list(iter_items(ScoreStore(store), config.contexts))

    async def time_all() -> dict[str, tuple[int, float]]:
        timings = {}
        for evaluator in evaluators:
            started = time.perf_counter()
            for item in items:
                result = await evaluator.score(item)
                assert result is not None and (isinstance(result, NotApplicable) or 0 <= result.value <= 1)
            timings[evaluator.name] = (len(items), time.perf_counter() - started)
        return timings

    return asyncio.run(time_all())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exchanges", type=int, default=10_000)
    parser.add_argument("--evaluators", default="", help="comma-separated names (default: every one with no judge)")
    parser.add_argument("--direct", action="store_true", help="also time each score() in-process, without the runner")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None, help="build the store in this directory and keep it")
    args = parser.parse_args(argv)
    if args.exchanges < 1:
        parser.error(f"--exchanges {args.exchanges}: expected a positive number")

    config = ShadowtapConfig()
    names = [name.strip() for name in args.evaluators.split(",") if name.strip()]
    evaluators, skipped = build_evaluators(config, names, config_dir=ROOT)
    evaluators = [evaluator for evaluator in evaluators if not evaluator.needs_judge]

    with tempfile.TemporaryDirectory(prefix="shadowtap-bench-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        db_path = workdir / "captures.db"
        if db_path.exists():
            parser.error(f"--keep {str(workdir)!r} already holds captures.db")
        started = time.perf_counter()
        store = build_store(db_path, args.exchanges, args.seed)
        build_s = time.perf_counter() - started
        answers = store.db.execute("select count(*) from exchanges").fetchone()[0] + \
            store.db.execute("select count(*) from shadows where outcome = 'ok'").fetchone()[0]
        wall_s, stats = run_with_runner(store, evaluators, config)
        direct = run_direct(store, evaluators, config) if args.direct else {}
        store.close()

    total_rows = sum(sum(counts.values()) for counts in stats["outcomes"].values())
    print(f"## LLM-free evaluation of {args.exchanges:,} captured exchanges ({answers:,} answers)\n")
    print(f"EvalRunner (as `shadowtap eval` runs it): {total_rows:,} score rows in {wall_s:.2f} s wall, "
          f"{total_rows / wall_s:,.0f} rows/s, {args.exchanges / wall_s:,.0f} exchanges/s "
          f"(store built in {build_s:.1f} s, not counted)\n")
    header = "| evaluator | scored | not applicable | errors | time in evaluator s | evaluator scores/s |"
    rule = "|---|---:|---:|---:|---:|---:|"
    if direct:
        header += " direct score() s | direct calls/s |"
        rule += "---:|---:|"
    print(header)
    print(rule)
    for evaluator in evaluators:
        counts, busy_s = stats["outcomes"][evaluator.name], stats["busy_ms"][evaluator.name] / 1000
        done = sum(counts.values())
        line = (f"| {evaluator.name} | {counts['score']:,} | {counts['not_applicable']:,} | {counts['error']:,} "
                f"| {busy_s:.2f} | {done / busy_s if busy_s else float('inf'):,.0f} |")
        if direct:
            calls, seconds = direct[evaluator.name]
            line += f" {seconds:.2f} | {calls / seconds if seconds else float('inf'):,.0f} |"
        print(line)
    for note in skipped:
        print(f"\nskipped {note}")
    command = "python " + " ".join(["bench/eval_throughput.py", *(sys.argv[1:] if argv is None else argv)])
    print(f"\ncommand: {command}; machine: {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {platform.machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
