"""The processes under test, each on its own: the simulated upstream and `shadowtap serve` in
front of it, with a throwaway store; plus reading their CPU time from /proc."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from shadowtap.core.store import CaptureStore
from shadowtap.proxy.local_processes import (
    free_port,
    proxy_command,
    simulator_command,
    stop_process,
    wait_until_serving,
)
from shadowtap.proxy.process_names import CAPTURE_BUILDER, CAPTURE_RECORDER

REPO_ROOT = Path(__file__).resolve().parent.parent
_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuTimes:
    """CPU a process has used, in seconds: in all its threads, in its main thread (the proxy's
    event loop), and as utime + stime from /proc/<pid>/stat.

    The first two come from schedstat, which counts nanoseconds; stat counts 10 ms clock ticks,
    too coarse for phases that last a few tens of milliseconds, so it is kept only to check.
    """

    process_s: float
    main_thread_s: float
    stat_s: float

    def __add__(self, other: CpuTimes) -> CpuTimes:
        return CpuTimes(self.process_s + other.process_s, self.main_thread_s + other.main_thread_s,
                        self.stat_s + other.stat_s)

    def __sub__(self, earlier: CpuTimes) -> CpuTimes:
        return CpuTimes(self.process_s - earlier.process_s, self.main_thread_s - earlier.main_thread_s,
                        self.stat_s - earlier.stat_s)


def _schedstat_s(path: str) -> float:
    try:
        with open(path) as file:
            return int(file.read().split()[0]) / 1e9
    except (FileNotFoundError, ProcessLookupError):
        return 0.0  # a thread that has just exited


def _stat_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as file:
        # The command name (field 2) may hold spaces; fields after its ")" start at field 3,
        # so utime (field 14) and stime (field 15) are at 11 and 12.
        fields = file.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) * _TICK_S


def cpu_times(pid: int) -> CpuTimes:
    """A proxy's CPU includes its capture recorder child's (before it, its row builder's): that
    work ran in its writer thread until it moved out of the live process, and it is still the
    proxy's cost per request. /proc's comm holds 15 characters, so the name is matched that far."""
    own = _own_cpu_times(pid)
    capture_children = {CAPTURE_BUILDER[:15], CAPTURE_RECORDER[:15]}
    for child in child_pids(pid):
        if process_name(child) in capture_children:
            own = own + CpuTimes(_own_cpu_times(child).process_s, 0.0, _stat_s(child))
    return own


def _own_cpu_times(pid: int) -> CpuTimes:
    threads = sum(_schedstat_s(f"/proc/{pid}/task/{tid}/schedstat") for tid in os.listdir(f"/proc/{pid}/task"))
    return CpuTimes(threads, _schedstat_s(f"/proc/{pid}/task/{pid}/schedstat"), _stat_s(pid))


def child_pids(pid: int) -> list[int]:
    children: list[int] = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as file:
                children += [int(child) for child in file.read().split()]
        except FileNotFoundError:
            continue
    return children


def process_name(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm") as file:
            return file.read().strip()
    except FileNotFoundError:
        return None


def _proxy_config(port: int, upstream_base_url: str, workdir: Path) -> str:
    # json.dumps quotes a path the way TOML's basic strings expect.
    return (f"[server]\nhost = \"127.0.0.1\"\nport = {port}\n"
            f"log_file = {json.dumps(str(workdir / 'proxy.log'))}\n\n"
            f"[primary]\nbase_url = {json.dumps(upstream_base_url)}\n"
            # The simulator answers Anthropic Messages at its root too (the Messages rows).
            f"anthropic_base_url = {json.dumps(upstream_base_url.removesuffix('/v1'))}\n\n"
            f"[store]\npath = {json.dumps(str(workdir / 'captures.db'))}\n")


def spawn(command: list[str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        return subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)


@dataclass
class LocalStack:
    """Upstream and proxy, started with every setting at its default except where files go."""

    simulator: subprocess.Popen
    proxy: subprocess.Popen
    simulator_url: str
    proxy_url: str
    workdir: Path
    store: CaptureStore | None = None

    @classmethod
    def start(cls, workdir: Path) -> LocalStack:
        simulator_port, proxy_port = free_port(), free_port()
        simulator = spawn(simulator_command(simulator_port), workdir / "simulator.log")
        simulator_url = f"http://127.0.0.1:{simulator_port}"
        config_path = workdir / "shadowtap.toml"
        config_path.write_text(_proxy_config(proxy_port, f"{simulator_url}/v1", workdir))
        proxy = spawn(proxy_command(config_path), workdir / "proxy.stderr.log")
        stack = cls(simulator, proxy, simulator_url, f"http://127.0.0.1:{proxy_port}", workdir)
        try:
            wait_until_serving(f"{simulator_url}/v1/models", simulator)
            wait_until_serving(f"{stack.proxy_url}/healthz", proxy)
        except RuntimeError as exc:
            stack.stop()
            raise RuntimeError(f"{exc} (logs in {workdir})") from None
        stack.store = CaptureStore.open(workdir / "captures.db")  # read-only use, for counting
        return stack

    def captured(self) -> int:
        assert self.store is not None
        return self.store.count_exchanges()

    async def wait_for_captures(self, expected: int, patience_s: float = 3.0) -> int:
        """Wait until the proxy has written `expected` exchanges, or stops making progress."""
        count, last_progress = self.captured(), time.monotonic()
        while count < expected and time.monotonic() - last_progress < patience_s:
            await asyncio.sleep(0.02)
            now = self.captured()
            if now > count:
                count, last_progress = now, time.monotonic()
        return count

    def stop(self) -> int:
        """SIGTERM the proxy (it drains its capture queue), then the upstream; the proxy's exit code."""
        if self.store is not None:
            self.store.close()
            self.store = None
        code = stop_process(self.proxy, timeout_s=60)
        stop_process(self.simulator)
        return code

    def captured_after_stop(self) -> int:
        store = CaptureStore.open(self.workdir / "captures.db")
        try:
            return store.count_exchanges()
        finally:
            store.close()
