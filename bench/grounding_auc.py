"""How well the LLM-free grounding score separates right from hallucinated answers (ROC AUC).

Each HaluEval QA row becomes two exchanges with the same retrieved context (`knowledge`) and
question: one answered with `right_answer` (a positive), one with `hallucinated_answer` (a
negative). Both go through `GroundingEvaluator.score()` exactly as `shadowtap eval` would call it.
ROC AUC is the Mann-Whitney statistic: the chance that a random right answer outscores a random
hallucinated one, ties counting half. A bag-of-words baseline (share of the answer's distinct
words found in the context) is computed in the same run for comparison.

The grounding weights were tuned on the first half of the dev file only; the second half is
held out. Usage:

    python bench/grounding_auc.py [--data PATH] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shadowtap.evaluators.base import PRIMARY, Answer, ContextItem, EvalItem  # noqa: E402
from shadowtap.evaluators.grounding import GroundingEvaluator  # noqa: E402
from shadowtap.evaluators.text_support import tokens  # noqa: E402

DEFAULT_DATA = Path("/work/shared/data/halueval_qa_dev.jsonl")
FALLBACK_DATA = ROOT / "tests" / "data" / "halueval_sample.jsonl"


def roc_auc(positives: list[float], negatives: list[float]) -> float:
    """Mann-Whitney U / (n_pos * n_neg), ties counting half; O(n log n) by ranking."""
    if not positives or not negatives:
        raise ValueError("ROC AUC needs at least one positive and one negative score")
    labelled = sorted([(value, 1) for value in positives] + [(value, 0) for value in negatives])
    rank_sum = 0.0
    i = 0
    while i < len(labelled):
        j = i
        while j < len(labelled) and labelled[j][0] == labelled[i][0]:
            j += 1
        mean_rank = (i + 1 + j) / 2          # ranks i+1 .. j share their mean
        rank_sum += mean_rank * sum(label for _, label in labelled[i:j])
        i = j
    n_pos, n_neg = len(positives), len(negatives)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def bag_of_words_overlap(answer: str, context: str) -> float:
    """Baseline: the share of the answer's distinct lower-case words that occur in the context."""
    words = set(tokens(answer))
    return len(words & set(tokens(context))) / len(words) if words else 0.0


def load_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def eval_item(row: dict, answer_text: str, index: int) -> EvalItem:
    request = {"model": "primary-model", "messages": [
        {"role": "system", "content": "Answer from the context."},
        {"role": "user", "content": row["question"]},
    ]}
    answer = Answer(source=PRIMARY, text=answer_text, status=200)
    return EvalItem(
        exchange={"id": f"halueval-{index}", "started_at": "2025-01-01T00:00:00+00:00", "endpoint": "chat.completions"},
        request=request, contexts=[ContextItem(text=row["knowledge"], id=f"knowledge-{index}")],
        answer=answer, primary=answer)


async def grounding_scores(rows: list[dict]) -> tuple[list[float], list[float]]:
    evaluator = GroundingEvaluator()
    right, hallucinated = [], []
    for index, row in enumerate(rows):
        for key, out in (("right_answer", right), ("hallucinated_answer", hallucinated)):
            result = await evaluator.score(eval_item(row, row[key], index))
            out.append(getattr(result, "value", 0.0))
    return right, hallucinated


def evaluate(rows: list[dict]) -> dict:
    """AUCs for all rows and for each half, grounding beside the bag-of-words baseline."""
    started = time.perf_counter()
    right, hallucinated = asyncio.run(grounding_scores(rows))
    elapsed = time.perf_counter() - started
    bow_right = [bag_of_words_overlap(row["right_answer"], row["knowledge"]) for row in rows]
    bow_hallucinated = [bag_of_words_overlap(row["hallucinated_answer"], row["knowledge"]) for row in rows]
    half = len(rows) // 2
    splits = {"all": slice(0, len(rows))}
    if half >= 1:
        splits[f"first half (rows 1-{half})"] = slice(0, half)
        splits[f"second half (rows {half + 1}-{len(rows)})"] = slice(half, len(rows))
    results = []
    for name, part in splits.items():
        results.append({
            "split": name, "rows": len(rows[part]),
            "grounding_auc": round(roc_auc(right[part], hallucinated[part]), 4),
            "bag_of_words_auc": round(roc_auc(bow_right[part], bow_hallucinated[part]), 4),
        })
    return {"splits": results, "scores_per_second": round(2 * len(rows) / elapsed) if elapsed else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None,
                        help=f"JSONL with knowledge/question/right_answer/hallucinated_answer "
                             f"(default {DEFAULT_DATA}, else {FALLBACK_DATA.relative_to(ROOT)})")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    path = args.data or (DEFAULT_DATA if DEFAULT_DATA.exists() else FALLBACK_DATA)
    if not path.exists():
        parser.error(f"--data {str(path)!r} does not exist")
    rows = load_rows(path)
    if not rows:
        parser.error(f"--data {str(path)!r} has no rows")
    report = evaluate(rows)
    command = "python " + " ".join(["bench/grounding_auc.py", *(sys.argv[1:] if argv is None else argv)])
    if args.json:
        print(json.dumps({"data": str(path), "command": command, **report}, indent=2))
        return 0
    print(f"grounding ROC AUC, right (positive) vs hallucinated answers, {path} ({len(rows)} rows)\n")
    print("| split | rows | grounding AUC | bag-of-words AUC |")
    print("|---|---:|---:|---:|")
    for split in report["splits"]:
        print(f"| {split['split']} | {split['rows']} | {split['grounding_auc']:.4f} "
              f"| {split['bag_of_words_auc']:.4f} |")
    print("\nThe grounding weights were tuned on rows 1-125 of halueval_qa_dev.jsonl; rows 126-250 were held out.")
    print("HaluEval's right answers are mostly short spans copied from the context, which flatters any lexical")
    print("score: expect less separation on free-form prose answers.")
    print(f"grounding scored {report['scores_per_second']} answers/s here; command: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
