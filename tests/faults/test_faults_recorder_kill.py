"""SIGKILL of one process of a real `shadowtap serve`: the live process alone, or its recorder alone.

The live process hands each exchange to the capture recorder over a Unix socket as soon as its
response ends; the kernel keeps what was written even when the writer dies. So a SIGKILL of the
live process loses no exchange whose hand-off had run (the next turn of its event loop), and the
recorder writes everything it was sent, then exits by itself. A SIGKILL of the recorder loses
what it held; the live path does not notice, a new recorder is started, and capture carries on.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from tests.support.fault_processes import (
    send_batch,
    start_serve,
    stored_rows,
    wait_for_ids,
    wait_until,
    write_serve_config,
)

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not Path("/proc/self/task").exists(),
                                                  reason="reads the process tree from Linux /proc")]

ANSWERED = 40
BATCH_SIZE = 1000


def slow_flush_config(tmp_path: Path, simulator_base_url: str) -> tuple[Path, int]:
    """A flush timer far longer than the test and batches larger than it sends: nothing reaches
    the store by the timer or a full batch, only by the recorder's drain when its input ends."""
    config_path, port = write_serve_config(tmp_path, simulator_base_url, f"[store]\nbatch_size = {BATCH_SIZE}\n")
    config_path.write_text(config_path.read_text().replace("flush_interval_ms = 20", "flush_interval_ms = 60000"))
    assert "flush_interval_ms = 60000" in config_path.read_text()
    return config_path, port


def _children(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(child) for child in (task / "children").read_text().split()]
    return children


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return ""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] not in "ZX"
    except FileNotFoundError:
        return False


def recorders(pid: int) -> list[int]:
    return [child for child in _children(pid) if _name(child).startswith("shadowtap-rec")]


def recorder_of(pid: int) -> int:
    """The recorder under `pid`, once it has named itself (a second or so after it starts)."""
    wait_until(lambda: recorders(pid), 60, f"no capture recorder under {pid}")
    found = recorders(pid)
    assert len(found) == 1, f"expected one capture recorder under {pid}, found {found}"
    return found[0]


def answered_requests(base_url: str, first: int, count: int) -> set[str]:
    bodies = [({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"question {first + index}"}]}, {})
              for index in range(count)]
    received = asyncio.run(send_batch(base_url, bodies, clients=1))
    assert all(r.complete and r.status == 200 for r in received)
    return {r.exchange_id for r in received}


def test_every_answered_exchange_is_stored_when_the_live_process_alone_is_killed(simulator, tmp_path):
    config_path, port = slow_flush_config(tmp_path, simulator.base_url)
    serve = start_serve(config_path, port)
    try:
        recorder = recorder_of(serve.process.pid)
        answered = answered_requests(serve.base_url, 0, ANSWERED)
        # One more turn of the live process's event loop after the last answer: its hand-off ran.
        assert serve.health()["status"] == "ok"
        assert stored_rows(serve.store_path) == []  # nothing written yet: the flush timer is a minute
        serve.process.send_signal(signal.SIGKILL)  # the live process only, as the OOM killer would
        serve.process.wait(10)

        wait_until(lambda: not _alive(recorder), 60, "the recorder outlived the live process")
        stored = {row["id"] for row in stored_rows(serve.store_path)}
    finally:
        serve.kill_all()
    assert serve.process.returncode == -signal.SIGKILL
    assert stored == answered


def test_capture_carries_on_with_a_new_recorder_when_the_recorder_is_killed(simulator, tmp_path):
    config_path, port = write_serve_config(tmp_path, simulator.base_url)
    serve = start_serve(config_path, port)
    try:
        before = answered_requests(serve.base_url, 0, 5)
        assert wait_for_ids(serve.store_path, before) == before
        killed = recorder_of(serve.process.pid)
        os.kill(killed, signal.SIGKILL)
        wait_until(lambda: serve.logged("the capture recorder process died"), 30, "the recorder's death went unnoticed")
        # The live path does not notice: answers keep coming while the recorder is started again.
        during = answered_requests(serve.base_url, 5, 5)
        wait_until(lambda: recorders(serve.process.pid) not in ([], [killed]), 30,
                   "no new recorder was started")
        wait_until(lambda: serve.health()["capture_store"] == "ok", 30, "capture did not resume")
        after = answered_requests(serve.base_url, 10, 5)
        assert wait_for_ids(serve.store_path, after) == after
        counted = sum(serve.metric("shadowtap_capture_dropped_total", f'reason="{reason}"')
                      for reason in ("recorder_died", "recorder_restarting"))
    finally:
        assert serve.stop() == 0
    stored = {row["id"] for row in stored_rows(serve.store_path)}
    assert before | after <= stored
    # What the dead recorder held, or what came while none was running, is counted as dropped.
    assert len(during - stored) <= counted

