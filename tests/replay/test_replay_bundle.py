"""Incident bundles: export from one store, import into another, secrets never leave."""

import gzip

import orjson
import pytest

from shadowtap.core.errors import StoreError
from shadowtap.core.store import CaptureStore
from shadowtap.replay.bundle import export_bundle, import_bundle, read_bundle, scrub_config
from tests.support.factories import raw_exchange, row_builder

CANARY = "canary-7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c2e"


@pytest.fixture
def store(tmp_path):
    store = CaptureStore.open(tmp_path / "source.db")
    builder = row_builder()
    rows = [builder.build(raw_exchange(request={"model": "m", "messages": [{"role": "user", "content": f"q{i}"}]}))
            for i in range(3)]
    rows.append(builder.build(raw_exchange(request=b"\x00\xffnot json")))
    store.insert_exchanges(rows)
    store.db["shadows"].insert_all([{"id": f"{rows[0]['id']}:cand", "exchange_id": rows[0]["id"], "candidate": "cand",
                                     "outcome": "ok", "response_text": "shadow answer"}])
    store.db["scores"].insert_all([{"id": f"{rows[0]['id']}:primary:verbosity", "exchange_id": rows[0]["id"],
                                    "source": "primary", "evaluator": "verbosity", "evaluator_version": "1",
                                    "outcome": "score", "value": 0.5, "scored_at": "2024-01-01T00:00:00+00:00"}])
    yield store
    store.close()


@pytest.fixture
def exchange_ids(store):
    return [row["id"] for row in store.db.query("select id from exchanges order by rowid")]


CONFIG = {
    "primary": {"base_url": "https://api.example.com/v1", "api_key_env": "OPENAI_API_KEY", "api_key": CANARY},
    "candidates": [{"name": "cand", "model": "gpt-4o", "api_key_env": "CAND_KEY", "session_token": CANARY},
                   {"name": "other", "params": {"note": f"sk-{CANARY}"}}],
    "shadow": {"primary_twin_key_env": "TWIN_KEY", "client_secret": CANARY, "sample_rate": 0.5},
    "server": {"client_keys": [CANARY]},
    "opaque": "AbC123dEf456GhI789jKl012MnO345pQr678",
}


def rows_without_rowid(db, table):
    return sorted((dict(row) for row in db.query(f"select * from {table}")), key=lambda row: row["id"])


def test_a_bundle_round_trips_exchanges_shadows_and_scores_into_an_empty_store(store, exchange_ids, tmp_path):
    path = tmp_path / "incident.stbundle"
    exported = export_bundle(store, path, exchange_ids=exchange_ids, run_ids=[], config_snapshot=CONFIG)
    assert exported == {"exchanges": 4, "shadows": 1, "scores": 1}

    target = CaptureStore.open(tmp_path / "target.db")
    assert import_bundle(target, path) == {"exchanges": 4, "shadows": 1, "scores": 1}
    for table in ("exchanges", "shadows", "scores"):
        assert rows_without_rowid(target.db, table) == rows_without_rowid(store.db, table)
    raw = target.db.execute("select request_raw from exchanges where request_raw is not null").fetchone()[0]
    assert raw == b"\x00\xffnot json"

    # Importing again upserts rather than duplicating.
    assert import_bundle(target, path)["exchanges"] == 4
    assert target.count_exchanges() == 4
    target.close()


def test_a_bundle_holds_only_the_selected_exchanges_and_their_rows(store, exchange_ids, tmp_path):
    path = tmp_path / "b"
    assert export_bundle(store, path, exchange_ids=exchange_ids[1:2], run_ids=[], config_snapshot={}) == {
        "exchanges": 1, "shadows": 0, "scores": 0}
    assert [row["id"] for row in read_bundle(path)["tables"]["exchanges"]] == exchange_ids[1:2]


def test_a_bundle_is_one_versioned_gzip_json_document(store, exchange_ids, tmp_path):
    path = tmp_path / "b"
    export_bundle(store, path, exchange_ids=exchange_ids, run_ids=[], config_snapshot=CONFIG)
    document = orjson.loads(gzip.decompress(path.read_bytes()))
    assert (document["format"], document["version"]) == ("shadowtap-bundle", 1)
    assert document["base64_columns"] == {"exchanges": ["request_raw"]}
    assert document["selection"] == {"exchange_ids": exchange_ids, "run_ids": []}


def test_a_canary_secret_in_the_config_snapshot_never_appears_in_the_bundle(store, exchange_ids, tmp_path):
    path = tmp_path / "b"
    export_bundle(store, path, exchange_ids=exchange_ids, run_ids=[], config_snapshot=CONFIG)
    data = gzip.decompress(path.read_bytes())
    assert CANARY.encode() not in data
    assert b"AbC123dEf456GhI789jKl012MnO345pQr678" not in data
    config = read_bundle(path)["config"]
    assert config["primary"] == {"base_url": "https://api.example.com/v1", "api_key_env": "OPENAI_API_KEY"}
    assert config["shadow"] == {"primary_twin_key_env": "TWIN_KEY", "sample_rate": 0.5}
    assert config["candidates"][0] == {"name": "cand", "model": "gpt-4o", "api_key_env": "CAND_KEY"}


def test_scrub_config_names_what_it_removed():
    _, removed = scrub_config(CONFIG)
    assert removed == ["primary.api_key", "candidates[0].session_token", "candidates[1].params.note",
                       "shadow.client_secret", "server.client_keys", "opaque"]


def test_replay_runs_and_results_travel_with_the_bundle_when_the_tables_exist(store, exchange_ids, tmp_path):
    store.db["replay_runs"].insert({"id": "run1", "created_at": "2026-11-23T00:00:00+00:00", "status": "finished",
                                    "selection": "{}", "target": "cand", "k": 1, "config": orjson.dumps(
        {"primary": {"api_key": CANARY, "api_key_env": "K"}}).decode()})
    store.db["replay_results"].insert({"id": "run1:x:0", "run_id": "run1", "exchange_id": exchange_ids[2],
                                       "repetition": 0, "outcome": "ok", "response_text": "replayed"})
    path = tmp_path / "b"
    assert export_bundle(store, path, exchange_ids=exchange_ids[:1], run_ids=["run1"], config_snapshot={}) == {
        "exchanges": 2, "shadows": 1, "scores": 1, "replay_runs": 1, "replay_results": 1}
    assert CANARY.encode() not in gzip.decompress(path.read_bytes())

    target = CaptureStore.open(tmp_path / "target.db")
    counts = import_bundle(target, path)
    assert counts["replay_results"] == 1 and counts["exchanges"] == 2
    (result,) = target.db.query("select run_id, exchange_id, response_text from replay_results")
    assert result == {"run_id": "run1", "exchange_id": exchange_ids[2], "response_text": "replayed"}
    target.close()


def test_a_store_without_the_replay_tables_takes_the_rest_and_creates_nothing(store, exchange_ids, tmp_path):
    store.db["replay_runs"].insert({"id": "run1", "created_at": "2026-11-23T00:00:00+00:00", "status": "finished",
                                    "selection": "{}", "target": "cand", "k": 1})
    path = tmp_path / "b"
    export_bundle(store, path, exchange_ids=exchange_ids[:1], run_ids=["run1"], config_snapshot={})
    target = CaptureStore.open(tmp_path / "target.db")
    target.db["replay_results"].drop()
    target.db["replay_runs"].drop()
    assert import_bundle(target, path) == {"exchanges": 1, "shadows": 1, "scores": 1}
    assert not target.db["replay_runs"].exists()
    target.close()


def test_export_refuses_an_exchange_id_the_store_does_not_hold(store, tmp_path):
    with pytest.raises(StoreError, match="no exchange with id 'nope'"):
        export_bundle(store, tmp_path / "b", exchange_ids=["nope"], run_ids=[], config_snapshot={})
    assert not (tmp_path / "b").exists()


def test_importing_a_bundle_of_an_unknown_version_names_the_format_and_version(store, tmp_path):
    path = tmp_path / "b"
    path.write_bytes(gzip.compress(orjson.dumps({"format": "shadowtap-bundle", "version": 99, "tables": {}})))
    with pytest.raises(StoreError, match=r"unsupported bundle format 'shadowtap-bundle' version 99"):
        import_bundle(store, path)


def test_importing_a_document_of_another_format_names_what_it_found(store, tmp_path):
    path = tmp_path / "b"
    path.write_bytes(gzip.compress(orjson.dumps({"format": "har", "version": "1.2"})))
    with pytest.raises(StoreError, match=r"format 'har' version '1.2'"):
        import_bundle(store, path)


@pytest.mark.parametrize("content", [b"", b"plain text", b"\x1f\x8b\x08\x00garbage", gzip.compress(b"[1, 2")])
def test_importing_a_corrupted_bundle_gives_a_clear_error(store, tmp_path, content):
    path = tmp_path / "b"
    path.write_bytes(content)
    with pytest.raises(StoreError, match="not a readable shadowtap bundle"):
        import_bundle(store, path)


def test_importing_a_truncated_bundle_gives_a_clear_error(store, exchange_ids, tmp_path):
    path = tmp_path / "b"
    export_bundle(store, path, exchange_ids=exchange_ids, run_ids=[], config_snapshot={})
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(StoreError, match="not a readable shadowtap bundle"):
        import_bundle(store, path)


def test_export_and_import_commands_carry_exchanges_to_another_store(store, exchange_ids, tmp_path):
    from click.testing import CliRunner

    from shadowtap.core.cli import cli

    store.close()
    source = str(tmp_path / "source.db")
    bundle = str(tmp_path / "incident.bundle")
    runner = CliRunner()
    exported = runner.invoke(cli, ["replay", "export", "--store", source, "--id", exchange_ids[0],
                                   "--id", exchange_ids[1], "-o", bundle])
    assert exported.exit_code == 0, exported.output
    target = str(tmp_path / "colleague.db")
    imported = runner.invoke(cli, ["replay", "import", "--store", target, bundle])
    assert imported.exit_code == 0, imported.output
    copied = CaptureStore.open(target)
    assert sorted(row["id"] for row in copied.db.query("select id from exchanges")) == sorted(exchange_ids[:2])
    copied.close()
    nothing = runner.invoke(cli, ["replay", "export", "--store", source, "-o", bundle])
    assert nothing.exit_code == 2 and "nothing to export" in nothing.output
