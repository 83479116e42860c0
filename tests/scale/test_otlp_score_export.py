"""Scores that `shadowtap eval` writes straight into the shared PostgreSQL store are exported too:
the shipper that holds the export finds them there and sends each once as a
`gen_ai.evaluation.result` event, joined to the span of the answer it judged."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from shadowtap.core.cli import cli
from shadowtap.core.config.store import OtlpExportConfig
from shadowtap.core.redaction import Redactor
from shadowtap.core.ship.otlp import OtlpExporter, answer_span_id, trace_ids
from shadowtap.core.ship.shipper import Shipper
from shadowtap.core.store import CaptureStore
from tests.scale.otlp_receiver import attributes
from tests.support.eval_support import add_exchanges, add_shadow
from tests.support.postgres import pg_rows


@pytest.fixture
def spool(tmp_path):
    store = CaptureStore.open(tmp_path / "spool.db")
    yield store
    store.close()


def exporting_shipper(spool: CaptureStore, url: str, exporter: OtlpExporter) -> Shipper:
    """A shipper that looks for new scores each round (ten seconds apart in production)."""
    return Shipper(spool, lambda: CaptureStore.open(url), on_shipped=exporter.export_batch,
                   export_scores=exporter.export_batch, score_export_every_s=0)


def eval_shared_store(url: str) -> None:
    result = CliRunner().invoke(cli, ["eval", "--store", url, "--evaluator", "agreement,refusal", "--json"])
    assert result.exit_code == 0, result.output


def pg_scores(url: str) -> dict[str, tuple]:
    rows = pg_rows(url, "select id, exchange_id, source, evaluator, evaluator_version, outcome, value, label "
                        "from scores")
    return {row[0]: row[1:] for row in rows}


def test_scores_eval_wrote_into_postgres_are_exported_as_evaluation_events(spool, pg_url, receiver):
    rows = add_exchanges(spool, 2)
    add_shadow(spool, rows[0]["id"], "small")
    exporter = OtlpExporter(OtlpExportConfig(endpoint=receiver.url), Redactor())
    shipper = exporting_shipper(spool, pg_url, exporter)
    shipper.ship_once()  # the exchanges and the shadow row reach PostgreSQL; no scores yet
    eval_shared_store(pg_url)  # a worker scores the shared store, not the spool
    scores = pg_scores(pg_url)
    assert len(scores) == 6  # three answers (two primary, one candidate's), two evaluators each
    assert any(score[5] is not None for score in scores.values())  # some with a value
    shipper.ship_once()  # nothing new to ship; the scores are found in PostgreSQL
    shipper.close()
    exporter.shutdown()
    events = {":".join(attributes(event)[key] for key in ("shadowtap.exchange.id", "shadowtap.answer.source",
                                                           "gen_ai.evaluation.name")): event
              for event in receiver.events}
    assert len(receiver.events) == 6 and shipper.counters.scores_exported == 6
    for exchange_id, source, evaluator, version, outcome, value, label in scores.values():
        event = events[f"{exchange_id}:{source}:{evaluator}"]
        assert event.event_name == "gen_ai.evaluation.result"
        sent = attributes(event)
        assert sent.get("gen_ai.evaluation.score.value") == value
        assert sent.get("gen_ai.evaluation.score.label") == (label or (outcome if outcome != "score" else None))
        assert sent["shadowtap.evaluator.version"] == version
        assert int.from_bytes(event.trace_id, "big") == trace_ids(exchange_id)[0]
        assert int.from_bytes(event.span_id, "big") == answer_span_id(exchange_id, source)


def test_each_score_is_exported_once_and_again_only_when_it_is_scored_again(spool, pg_url, receiver):
    rows = add_exchanges(spool, 2)
    exporter = OtlpExporter(OtlpExportConfig(endpoint=receiver.url), Redactor())
    first = exporting_shipper(spool, pg_url, exporter)
    first.ship_once()
    first.close()
    eval_shared_store(pg_url)
    for _ in range(2):  # two looks by fresh shippers: the second finds nothing new
        shipper = exporting_shipper(spool, pg_url, exporter)
        shipper.ship_once()
        shipper.close()
    rescored_at = datetime.now(UTC).isoformat(timespec="microseconds")
    pg_rows(pg_url, f"update scores set scored_at = '{rescored_at}' "
                    f"where exchange_id = '{rows[0]['id']}'")  # written again (a new evaluator version)
    last = exporting_shipper(spool, pg_url, exporter)
    last.ship_once()
    last.close()
    exporter.shutdown()
    exported = sorted(attributes(event)["shadowtap.exchange.id"] for event in receiver.events)
    first_time = [exchange_id for exchange_id, *_ in pg_scores(pg_url).values()]
    again = [exchange_id for exchange_id in first_time if exchange_id == rows[0]["id"]]
    assert exported == sorted(first_time + again)


def test_one_shipper_at_a_time_exports_the_shared_store_scores(tmp_path, spool, pg_url, receiver):
    add_exchanges(spool, 2)
    other_spool = CaptureStore.open(tmp_path / "other.db")
    add_exchanges(other_spool, 1)
    exporter = OtlpExporter(OtlpExportConfig(endpoint=receiver.url), Redactor())
    holder = exporting_shipper(spool, pg_url, exporter)
    holder.ship_once()  # takes the export, and keeps it while it runs
    other = exporting_shipper(other_spool, pg_url, exporter)
    other.ship_once()
    eval_shared_store(pg_url)
    other.ship_once()  # it looks again: the export is still taken
    assert other.counters.scores_exported == 0
    holder.close()  # stops: the export is free for the next one that looks
    other.ship_once()
    assert other.counters.scores_exported == len(pg_scores(pg_url)) > 0
    other.close()
    other_spool.close()
    exporter.shutdown()
    assert len(receiver.events) == len(pg_scores(pg_url))


def test_a_score_shipped_from_a_spool_is_sent_once_not_again_by_the_score_export(spool, pg_url, receiver):
    (row,) = add_exchanges(spool, 1)
    spool.sql.execute("insert into scores (id, exchange_id, source, evaluator, evaluator_version, outcome, value, "
                      "scored_at) values (?, ?, 'primary', 'verbosity', '1', 'score', 0.5, "
                      "strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now'))", [f"{row['id']}:primary:verbosity", row["id"]])
    spool.db.conn.commit()
    exporter = OtlpExporter(OtlpExportConfig(endpoint=receiver.url), Redactor())
    shipper = exporting_shipper(spool, pg_url, exporter)
    shipper.ship_once()
    shipper.ship_once()
    shipper.close()
    exporter.shutdown()
    assert len(receiver.events) == 1


def test_a_score_stamped_in_the_future_does_not_hide_the_scores_after_it(spool, pg_url, receiver):
    rows = add_exchanges(spool, 2)
    exporter = OtlpExporter(OtlpExportConfig(endpoint=receiver.url), Redactor())
    shipper = exporting_shipper(spool, pg_url, exporter)
    shipper.ship_once()
    pg_rows(pg_url, "insert into scores (id, exchange_id, source, evaluator, evaluator_version, outcome, value, "
                    f"scored_at) values ('skewed', '{rows[0]['id']}', 'primary', 'clock', '1', 'score', 1.0, "
                    "'2099-01-01T00:00:00.000000+00:00')")  # a worker whose clock is far ahead
    shipper.ship_once()
    eval_shared_store(pg_url)  # then scores stamped now
    shipper.ship_once()
    shipper.ship_once()  # and nothing again
    shipper.close()
    exporter.shutdown()
    assert len(receiver.events) == len(pg_scores(pg_url)) > 1
