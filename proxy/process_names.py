"""Who a helper process is: its name as `ps`, `top` and the benchmarks see it (Linux; elsewhere a
no-op), and its lower CPU priority."""

from __future__ import annotations

import logging
import os

CAPTURE_BUILDER = "shadowtap-build"
CAPTURE_RECORDER = "shadowtap-record"
SHADOW_WORKER = "shadowtap-shadow"


def name_this_process(name: str) -> None:
    """Set the kernel's short name (15 characters at most) of the calling process's main thread."""
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write(name[:15])
    except OSError:
        pass  # not Linux, or /proc not mounted: the name is only a convenience


def lower_priority(niceness: int, process: str) -> None:
    """Live requests should get contended cores first; only ever lowers priority, so no privilege
    is needed. A failure is logged and the process runs at normal priority."""
    if niceness > 0 and hasattr(os, "nice"):
        try:
            os.nice(niceness)
        except OSError as error:
            logging.getLogger("shadowtap.processes").warning(
                "could not lower the %s's priority", process, extra={"error": str(error)})
