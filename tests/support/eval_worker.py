"""One `shadowtap eval` worker on a shared PostgreSQL store, for tests/scale: scores with a slow fake
evaluator and prints each score id it wrote, so a test can tell whether two workers overlapped.

    python -m tests.support.eval_worker URL
"""

from __future__ import annotations

import asyncio
import sys

from shadowtap.core.config import ContextsConfig
from shadowtap.core.store import Store
from shadowtap.evaluators.runner import EvalRunner
from tests.support.eval_support import SlowEvaluator


def main(url: str) -> None:
    store = Store.open(url)
    runner = EvalRunner(store.scores, [SlowEvaluator()], contexts=ContextsConfig(), max_concurrency=4,
                        page_size=10, batch_size=5)
    asyncio.run(runner.run(on_scored=lambda row: print(row["id"], flush=True)))
    store.close()


if __name__ == "__main__":
    main(sys.argv[1])
