"""Crash and shutdown of a real `shadowtap serve` with a candidate, under mixed concurrent traffic.

SIGKILL: after a restart on the same store, the store is intact, every row is whole, and the
exchanges lost are only those that finished within the capture writer's durability lag.
SIGTERM: streams in flight finish, the capture and shadow queues drain, nothing is lost.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.support.fault_processes import (
    Received,
    assert_rows_are_whole,
    integrity_check,
    mixed_request,
    send_batch,
    send_until,
    start_serve,
    stored_rows,
    wait_for_ids,
    wait_until,
    write_serve_config,
)

BATCH_SIZE = 20
QUEUE_SIZE = 10_000
# An exchange is written within one flush interval (20 ms in these configs) plus the time to build
# and insert a batch; this allows for a loaded 2-core machine. docs/guarantees.md documents the bound.
DURABILITY_LAG_S = 3.0


def crash_config(simulator_base_url: str, *, graceful_shutdown_s: float = 10) -> str:
    return (f"[server]\ngraceful_shutdown_s = {graceful_shutdown_s}\n"
            f"[store]\nbatch_size = {BATCH_SIZE}\nqueue_size = {QUEUE_SIZE}\n"
            "[shadow]\ngrace_period_s = 5\n"
            f'[[candidates]]\nname = "sim"\nmodel = "openai/fake-sim"\napi_base = "{simulator_base_url}"\n'
            "max_concurrency = 8\n")


async def traffic_until_signalled(serve, *, clients: int, min_completed: int, min_seconds: float,
                                  signal_process) -> tuple[list[Received], float]:
    """Run traffic, call signal_process() once enough has completed; return what clients saw and
    the monotonic time of the signal."""
    results: list[Received] = []
    stop = asyncio.Event()
    traffic = asyncio.create_task(send_until(serve.base_url, stop, clients=clients, results=results,
                                             make_request=mixed_request))
    started = time.monotonic()
    while (sum(r.complete for r in results) < min_completed or time.monotonic() - started < min_seconds):
        assert time.monotonic() - started < 120, f"only {sum(r.complete for r in results)} exchanges completed"
        await asyncio.sleep(0.05)
    signalled_at = time.monotonic()
    await asyncio.to_thread(signal_process)
    stop.set()
    await asyncio.wait_for(traffic, 90)
    return results, signalled_at


def test_store_is_intact_and_loss_is_bounded_by_the_writer_lag_when_sigkill_hits_mixed_traffic(
        tmp_path, simulator):
    config_path, port = write_serve_config(tmp_path / "crash", simulator.base_url, crash_config(simulator.base_url))
    serve = start_serve(config_path, port)
    try:
        results, killed_at = asyncio.run(traffic_until_signalled(
            serve, clients=8, min_completed=150, min_seconds=3.0, signal_process=serve.kill_all))
    finally:
        serve.kill_all()
    assert serve.process.returncode == -9

    restarted = start_serve(config_path, port)
    try:
        assert integrity_check(serve.store_path) == "ok"
        exchanges, shadows = stored_rows(serve.store_path), stored_rows(serve.store_path, "shadows")
        completed = {r.exchange_id: r for r in results if r.complete}
        cut_off = [r for r in results if not r.complete and r.status is not None]
        stored_ids = {row["id"] for row in exchanges}
        lost = set(completed) - stored_ids
        lagging = {exchange_id for exchange_id, r in completed.items()
                   if r.finished_at > killed_at - DURABILITY_LAG_S}

        assert len(completed) >= 150
        assert cut_off, "the kill should land while responses are being relayed"
        # Rows are whole (SQLite commits each batch atomically) and belong to real exchanges.
        assert_rows_are_whole(exchanges, shadows)
        assert stored_ids <= {r.exchange_id for r in results if r.exchange_id}
        # Only what finished within the durability lag before the kill can be missing.
        assert lost <= lagging, f"{len(lost - lagging)} exchanges finished long before the kill were lost"
        assert len(lost) <= QUEUE_SIZE + BATCH_SIZE
        # A shadow row can outlive an exchange the crash lost (its own writer is another
        # process), never one that was stored long before the kill.
        orphans = {row["exchange_id"] for row in shadows} - stored_ids
        assert len(orphans) <= len(lost) + len(cut_off) + sum(1 for r in results if r.status is None)

        after = asyncio.run(send_batch(restarted.base_url, [mixed_request(i) for i in range(6)], clients=3))
        assert all(r.complete for r in after)
        new_ids = {r.exchange_id for r in after}
        assert wait_for_ids(serve.store_path, new_ids) == new_ids
        wait_until(lambda: new_ids <= {row["exchange_id"] for row in stored_rows(serve.store_path, "shadows")},
                   30, "shadows of the exchanges after the restart were not recorded")
    finally:
        assert restarted.stop() == 0
    assert integrity_check(serve.store_path) == "ok"


def test_streams_finish_and_every_capture_and_shadow_is_stored_when_sigterm_hits_continuous_traffic(
        tmp_path, simulator):
    graceful_shutdown_s, shadow_grace_s = 10, 5
    config_path, port = write_serve_config(tmp_path / "term", simulator.base_url,
                                           crash_config(simulator.base_url, graceful_shutdown_s=graceful_shutdown_s))
    serve = start_serve(config_path, port)
    exited_after: list[float] = []

    def sigterm_and_wait() -> None:
        sent = time.monotonic()
        serve.process.terminate()
        serve.process.wait(graceful_shutdown_s + shadow_grace_s + 60)
        exited_after.append(time.monotonic() - sent)

    try:
        results, signalled_at = asyncio.run(traffic_until_signalled(
            serve, clients=10, min_completed=60, min_seconds=2.0, signal_process=sigterm_and_wait))
    finally:
        serve.stop()

    started = [r for r in results if r.status is not None]
    in_flight = [r for r in started if r.headers_at < signalled_at < r.finished_at]
    completed_ids = {r.exchange_id for r in started if r.complete}
    exchanges, shadows = stored_rows(serve.store_path), stored_rows(serve.store_path, "shadows")
    drained = serve.logged("capture drained")

    assert serve.process.returncode == 0
    assert exited_after[0] < graceful_shutdown_s + shadow_grace_s + 20
    assert len(in_flight) >= 3, "SIGTERM should land while responses are being relayed"
    # Every response that had begun when the signal came was finished, none cut short.
    assert [r.exchange_id for r in started if not r.complete] == []
    # Nothing captured is lost: every exchange a client received is stored, with its shadow.
    assert {row["id"] for row in exchanges} == completed_ids
    assert drained and drained[0]["lost_at_shutdown"] == 0
    assert_rows_are_whole(exchanges, shadows)
    shadowed = [row["exchange_id"] for row in shadows]
    assert sorted(shadowed) == sorted(completed_ids)
    assert integrity_check(serve.store_path) == "ok"


def _children(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(child) for child in (task / "children").read_text().split()]
    return children


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] not in "ZX"
    except FileNotFoundError:
        return False


@pytest.mark.timeout(120)
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads the process tree from Linux /proc")
def test_the_shadow_worker_exits_by_itself_when_the_proxy_alone_is_killed(simulator, tmp_path):
    config_path, port = write_serve_config(tmp_path, simulator.base_url, crash_config(simulator.base_url))
    serve = start_serve(config_path, port)
    try:
        workers = _children(serve.process.pid)
        assert workers, "the proxy should have started a shadow worker"
        serve.process.kill()  # the proxy only, as the OOM killer would; not its process group
        serve.process.wait(10)
        wait_until(lambda: not any(_alive(pid) for pid in workers), 30,
                   "the shadow worker outlived its proxy, holding the store open")
    finally:
        serve.kill_all()
