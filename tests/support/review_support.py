"""Shared by the review UI tests (no tests here): a store with a verdict to read and answers to
label, one of them hostile, and a config whose [gate] fails the drifting candidate."""

from __future__ import annotations

from pathlib import Path

import orjson

from shadowtap.core.store import CaptureStore
from tests.support.report_support import StoreBuilder, balanced_store

ADMIN_TOKEN = "review-token-for-tests"
HOSTILE = '<script>window.pwned = 1; alert("pwned")</script><img src=x onerror="window.pwned = 2; alert(2)">'
GATE = "min_samples = 10\nmax_grounding_drop = 0.05\n"


def review_store(path: Path) -> None:
    """30 exchanges where "drifty" loses 0.2 grounding everywhere and disagrees on every third one,
    plus exchange "hostile", whose request and answers carry script."""
    store = CaptureStore.open(path)
    try:
        balanced_store(store, "drifty", 30, grounding_gap=0.2)
        for index in range(0, 30, 3):
            store.db.execute("update scores set value = 0.4, label = 'disagree' where id = ?",
                             [f"x{index:03d}:drifty:agreement"])
        for index in range(30):
            question = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Question number {index}?"}]}
            store.db.execute("update exchanges set request_json = ? where id = ?",
                             [orjson.dumps(question).decode(), f"x{index:03d}"])
            store.db.execute("update exchanges set response_text = ? where id = ?",
                             [f"The answer to question {index} is in the handbook.", f"x{index:03d}"])
            store.db.execute("update shadows set response_text = ? where id = ?",
                             [f"The answer to question {index} is in the handbook, chapter {index}.",
                              f"x{index:03d}:drifty"])
        build = StoreBuilder(store)
        build.exchange("hostile", "2026-02-01T05:00:00+00:00", task="qa", text=HOSTILE)
        store.db.execute("update exchanges set request_json = ? where id = 'hostile'",
                         [orjson.dumps({"messages": [{"role": "user", "content": HOSTILE}]}).decode()])
        build.shadow("hostile", "drifty", text=HOSTILE + " and more")
        build.score("hostile", "drifty", "agreement", 0.2, "disagree", {"note": HOSTILE})
    finally:
        store.close()


def review_config(path: Path, store_path: Path) -> Path:
    path.write_text(f'[primary]\nbase_url = "http://127.0.0.1:9/v1"\n\n[store]\npath = "{store_path}"\n\n'
                    f'[admin]\ntoken_env = "SHADOWTAP_TEST_REVIEW_TOKEN"\n\n[gate]\n{GATE}\n'
                    '[[candidates]]\nname = "drifty"\nmodel = "openai/drifty"\n', encoding="utf-8")
    return path
