"""Two uvicorn workers capturing into one SQLite store while a slow reader holds a read transaction.

No writer may fail with "database is locked" (they wait for each other, and a WAL reader never
blocks a writer), every exchange is stored, and the WAL that grew behind the reader is cut back
once the reader lets go and traffic goes on.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3

import pytest
from click.testing import CliRunner

from shadowtap.core.cli import cli
from shadowtap.core.config.loader import config_from_dict
from shadowtap.core.errors import ConfigError
from tests.support.fault_processes import (
    assert_rows_are_whole,
    chat_body,
    integrity_check,
    send_batch,
    start_serve,
    stored_rows,
    wait_for_ids,
    wait_until,
    write_serve_config,
)

MIB = 1024 * 1024
# 24 KiB of request text per exchange grows the WAL past SQLite's 1,000-page (4 MiB) checkpoint
# size quickly; the store cuts a WAL back to 4 MiB (WAL_SIZE_LIMIT_BYTES) once a checkpoint restarts it.
PADDING = 24 * 1024
HELD_WAL_BYTES = 12 * MIB
WAL_AFTER_BYTES = 6 * MIB


def padded_request(index: int) -> tuple[dict, dict]:
    return chat_body(index, stream=index % 2 == 0, padding=PADDING), {}


def wal_size(store_path) -> int:
    wal = f"{store_path}-wal"
    return os.path.getsize(wal) if os.path.exists(wal) else 0


def test_two_workers_store_every_exchange_and_the_wal_shrinks_when_a_long_reader_finishes(tmp_path, simulator):
    config_path, port = write_serve_config(tmp_path / "workers", simulator.base_url, "[store]\nbatch_size = 20\n")
    serve = start_serve(config_path, port, args=("--workers", "2"))
    try:
        ready = serve.logged("shadowtap ready")
        wait_until(lambda: len(serve.logged("shadowtap ready")) == 2, 60, "two workers should start")
        reader = sqlite3.connect(serve.store_path, isolation_level=None)
        try:
            # A slow report: one read transaction held open across the whole first phase.
            reader.execute("begin")
            held_count = reader.execute("select count(*) from exchanges").fetchone()[0]
            first = asyncio.run(send_batch(serve.base_url, [padded_request(i) for i in range(600)],
                                           clients=16, keepalive=False))
            first_ids = {r.exchange_id for r in first}
            # Writers are not blocked by the reader: the rows land while it still holds its snapshot.
            assert wait_for_ids(serve.store_path, first_ids, timeout_s=60) == first_ids
            assert reader.execute("select count(*) from exchanges").fetchone()[0] == held_count
            wal_while_held = wal_size(serve.store_path)
        finally:
            reader.execute("commit")
            reader.close()

        second = asyncio.run(send_batch(serve.base_url, [padded_request(1000 + i) for i in range(300)],
                                        clients=16, keepalive=False))
        second_ids = {r.exchange_id for r in second}
        assert wait_for_ids(serve.store_path, second_ids, timeout_s=60) == second_ids
        wait_until(lambda: wal_size(serve.store_path) <= WAL_AFTER_BYTES, 30,
                   f"the WAL stayed at {wal_size(serve.store_path)} bytes after the reader finished")
    finally:
        returncode = serve.stop()

    exchanges = stored_rows(serve.store_path)
    drained = serve.logged("capture drained")
    log_text = (tmp_path / "workers" / "proxy.log").read_text()
    assert len({entry["pid"] for entry in ready + serve.logged("shadowtap ready")}) == 2
    assert all(r.complete for r in first + second)
    assert wal_while_held >= HELD_WAL_BYTES, "the held reader should have made the WAL grow"
    # Both workers captured, nothing was lost or duplicated, and no write ever hit a lock.
    assert returncode == 0
    assert len(drained) == 2 and len({entry["pid"] for entry in drained}) == 2
    assert all(entry["written"] > 0 and entry["lost_at_shutdown"] == 0 for entry in drained)
    assert {row["id"] for row in exchanges} == first_ids | second_ids
    assert sum(entry["written"] for entry in drained) == len(exchanges)
    assert "database is locked" not in log_text and "capture store writes are failing" not in log_text
    assert_rows_are_whole(exchanges, [])
    assert integrity_check(serve.store_path) == "ok"


def test_serve_refuses_several_workers_naming_the_key_when_candidates_are_configured(tmp_path, simulator):
    extra = f'[[candidates]]\nname = "sim"\nmodel = "openai/fake-sim"\napi_base = "{simulator.base_url}"\n'
    config_path, _ = write_serve_config(tmp_path / "refused", simulator.base_url, extra)

    result = CliRunner().invoke(cli, ["serve", "--config", str(config_path), "--workers", "2"])

    assert result.exit_code == 2
    assert "[server] workers = 2" in result.output and "workers = 1" in result.output


def test_config_rejects_a_worker_count_outside_the_accepted_range():
    with pytest.raises(ConfigError, match=r"\[server\] workers = 0"):
        config_from_dict({"primary": {"base_url": "http://127.0.0.1:9/v1"}, "server": {"workers": 0}})
    config = config_from_dict({"primary": {"base_url": "http://127.0.0.1:9/v1"}, "server": {"workers": 4}})
    assert config.server.workers == 4
