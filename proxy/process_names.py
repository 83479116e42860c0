"""Name a helper process as `ps`, `top` and the benchmarks see it (Linux; elsewhere a no-op)."""

from __future__ import annotations

CAPTURE_BUILDER = "shadowtap-build"
SHADOW_WORKER = "shadowtap-shadow"


def name_this_process(name: str) -> None:
    """Set the kernel's short name (15 characters at most) of the calling process's main thread."""
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write(name[:15])
    except OSError:
        pass
