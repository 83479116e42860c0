"""A full disk under a running `shadowtap serve`, and an unwritable store at start-up.

The disk fills by lowering the file-size limit (RLIMIT_FSIZE) of the running proxy and of its capture
recorder, which writes the store, to one byte: every
write SQLite makes then fails (EFBIG; Python ignores SIGXFSZ), as on a full disk, and raising the
limit again is the space coming back. The proxy logs to a pipe, which no file-size limit touches.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import resource
import subprocess
from pathlib import Path

from shadowtap.core.store import CaptureStore
from shadowtap.proxy.local_processes import proxy_command
from tests.support.fault_processes import (
    assert_rows_are_whole,
    integrity_check,
    mixed_request,
    send_batch,
    start_serve,
    stored_rows,
    wait_for_ids,
    wait_until,
    write_serve_config,
)

QUEUE_SIZE = 20
DISK_CONFIG = f"[store]\nbatch_size = 5\nqueue_size = {QUEUE_SIZE}\n"
FAILING = "capture store writes are failing"
PR_CAPBSET_DROP = 24
RESUMED = "capture store writes resumed"


def process_tree(pid: int) -> list[int]:
    """The proxy and its children: the capture recorder, which writes the store, is one of them."""
    tree, index = [pid], 0
    while index < len(tree):
        for task in Path(f"/proc/{tree[index]}/task").glob("*/children"):
            tree += [int(child) for child in task.read_text().split()]
        index += 1
    return tree


def fill_disk(pid: int) -> None:
    for process in process_tree(pid):
        resource.prlimit(process, resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))


def free_disk(pid: int) -> None:
    for process in process_tree(pid):
        resource.prlimit(process, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def test_live_requests_succeed_and_capture_resumes_when_the_disk_fills_then_frees(tmp_path, simulator):
    config_path, port = write_serve_config(tmp_path / "disk", simulator.base_url, DISK_CONFIG, log_to_pipe=True)
    serve = start_serve(config_path, port, log_to_pipe=True)
    try:
        before = asyncio.run(send_batch(serve.base_url, [mixed_request(i) for i in range(6)], clients=3))
        before_ids = {r.exchange_id for r in before}
        assert wait_for_ids(serve.store_path, before_ids) == before_ids

        fill_disk(serve.process.pid)
        requests = [mixed_request(100 + i) for i in range(3 * QUEUE_SIZE)]
        during = asyncio.run(send_batch(serve.base_url, requests, clients=4))
        direct = asyncio.run(send_batch(simulator.base_url, requests, clients=4))
        # The live path never waits on the disk: every answer arrives whole, byte for byte.
        assert all(r.complete for r in during)
        assert [r.body for r in during] == [r.body for r in direct]
        wait_until(lambda: serve.metric("shadowtap_capture_write_errors_total") >= 3, 30,
                   "the writer should keep retrying the failing store")
        assert serve.health()["capture_store"] == "failing"
        dropped = serve.metric("shadowtap_capture_dropped_total", 'reason="store_failing"')
        # The queue is bounded: once full, captures are dropped and counted, not buffered without end.
        assert dropped >= len(during) - QUEUE_SIZE - 5
        assert len(serve.logged(FAILING)) == 1  # once per episode, not once per failed attempt
        assert serve.process.poll() is None

        free_disk(serve.process.pid)
        wait_until(lambda: serve.health()["capture_store"] == "ok", 30, "capture did not resume")
        after = asyncio.run(send_batch(serve.base_url, [mixed_request(200 + i) for i in range(6)], clients=3))
        after_ids = {r.exchange_id for r in after}
        assert wait_for_ids(serve.store_path, after_ids) == after_ids
        wait_until(lambda: serve.metric("shadowtap_capture_written_total")
                   == serve.metric("shadowtap_capture_enqueued_total"), 30, "queued captures were not written")

        resumed = serve.logged(RESUMED)
        failing = serve.logged(FAILING)
        exchanges = stored_rows(serve.store_path)
    finally:
        if serve.process.poll() is None:
            free_disk(serve.process.pid)
        serve.stop()

    during_ids = {r.exchange_id for r in during}
    stored_ids = {row["id"] for row in exchanges}
    assert len(failing) == 1 and len(resumed) == 1
    assert resumed[0]["dropped"] == dropped
    assert failing[0]["store"] == str(serve.store_path)
    # What was queued during the episode was kept and written; only the overflow was dropped.
    assert len(stored_ids & during_ids) == len(during_ids) - dropped
    assert stored_ids == before_ids | after_ids | (stored_ids & during_ids)
    assert_rows_are_whole(exchanges, [])
    assert integrity_check(serve.store_path) == "ok"


def _serve_exit(config_path: Path, **popen) -> subprocess.CompletedProcess:
    """`shadowtap serve --require-store`, which refuses to start on a store it cannot write (without
    it, the proxy serves without capture: tests/faults/test_faults_bad_store.py)."""
    return subprocess.run([*proxy_command(config_path), "--require-store"], capture_output=True, text=True,
                          timeout=60, **popen)


def _without_root_file_permission_override() -> None:
    """Root writes anywhere; drop the capabilities that let it (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH)
    from the child, so file modes apply to it as to any user."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_serve_with_require_store_exits_2_naming_the_path_when_the_store_directory_is_not_writable(tmp_path, simulator):
    store_dir = tmp_path / "readonly"
    config_path, _ = write_serve_config(store_dir, simulator.base_url, log_to_pipe=True)
    store_dir.chmod(0o555)
    as_a_user = {"preexec_fn": _without_root_file_permission_override} if os.geteuid() == 0 else {}
    try:
        result = _serve_exit(config_path, **as_a_user)
    finally:
        store_dir.chmod(0o755)

    assert result.returncode == 2
    assert f"directory '{store_dir}' is not writable" in result.stderr
    assert str(store_dir / "captures.db") in result.stderr


def test_serve_with_require_store_exits_2_naming_the_path_when_the_disk_is_full_at_start_up(tmp_path, simulator):
    config_path, _ = write_serve_config(tmp_path / "full", simulator.base_url, log_to_pipe=True)
    store_path = tmp_path / "full" / "captures.db"
    CaptureStore.open(store_path).close()  # an existing store: SQLite alone would open it without writing

    result = _serve_exit(config_path, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536)))

    assert result.returncode == 2
    assert f"cannot write capture store '{store_path}'" in result.stderr
    assert "file size limit reached" in result.stderr
    assert list((tmp_path / "full").glob(".captures.db.shadowtap-write-check-*")) == []
    assert integrity_check(store_path) == "ok"
