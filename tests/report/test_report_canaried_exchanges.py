"""An exchange a canary answered live holds the candidate's answer, not the primary's: the report's
comparison figures leave it out (its canary section reads it), and fallbacks, which the primary
answered, stay in."""

from __future__ import annotations

from shadowtap.core.store import CaptureStore, Store
from shadowtap.evaluators.report.build import build_report
from tests.support.report_support import StoreBuilder, balanced_store


def report_of(path) -> dict:
    with Store.open(path) as store:
        return build_report(store.reports, store=str(path)).to_json()


def test_exchanges_a_canary_answered_are_left_out_of_the_primarys_figures(tmp_path):
    path = tmp_path / "s.db"
    store = CaptureStore.open(path)
    balanced_store(store, "small", count=20)
    before = report_of(path)
    build = StoreBuilder(store)
    for index in range(5):   # the candidate answered these live; their "primary" scores are its own
        exchange_id = f"canaried{index}"
        build.exchange(exchange_id, f"2026-02-01T05:{index:02d}:00+00:00", task="qa")
        build.score(exchange_id, "primary", "grounding", 0.1, "ungrounded")
        build.score(exchange_id, "primary", "agreement", 0.1, "disagree", {"baseline": "primary_twin"})
        build.shadow(exchange_id, "primary_twin")
    store.db.execute("update exchanges set served_by = 'small' where id like 'canaried%'")
    store.db.execute("update exchanges set served_by = 'primary', fallback_reason = 'contract_invalid' "
                     "where id = 'x000'")
    store.db.conn.commit()
    store.close()
    after = report_of(path)
    assert after["exchanges"] == before["exchanges"] == 20
    assert after["candidates"] == before["candidates"]    # no figure moved, the fallback included
