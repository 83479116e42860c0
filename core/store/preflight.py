"""Start-up check that the capture store can be written: a clear error now, not a failing writer later.

`shadowtap serve` runs this before binding its port. SQLite alone would open a store on a full
disk (or in a read-only directory, when the file already exists) and only fail at the first write.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from shadowtap.core.errors import StoreError

# Room the check writes (and removes) beside the store: a WAL needs a few pages before the first
# checkpoint, and a disk with less than this free will be full within seconds of traffic.
PROBE_BYTES = 1024 * 1024


def check_store_writable(path: str | Path) -> None:
    """Raise StoreError naming the path when the store's directory is missing, not writable or full."""
    if str(path) == ":memory:":
        return
    store = Path(path).expanduser().resolve()
    directory = store.parent
    if not directory.is_dir():
        raise StoreError(f"cannot open capture store {str(path)!r}: directory {str(directory)!r} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StoreError(f"cannot write capture store {str(path)!r}: directory {str(directory)!r} is not "
                         "writable (SQLite creates the -wal and -shm files beside the store)")
    free = shutil.disk_usage(directory).free
    if free < PROBE_BYTES:
        raise StoreError(f"cannot write capture store {str(path)!r}: the disk holding {str(directory)!r} is "
                         f"full ({free} bytes free)")
    _probe_write(store, directory)


def _probe_write(store: Path, directory: Path) -> None:
    """Write PROBE_BYTES beside the store and remove them: catches what the checks above cannot see
    (a read-only mount, a quota, a file-size limit, running as root in a read-only directory)."""
    probe = directory / f".{store.name}.shadowtap-write-check-{os.getpid()}"
    try:
        with open(probe, "wb") as handle:
            handle.write(b"\0" * PROBE_BYTES)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise StoreError(f"cannot write capture store {str(store)!r}: writing to {str(directory)!r} failed: "
                         f"{_describe(exc)}") from None
    finally:
        probe.unlink(missing_ok=True)


def _describe(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    if exc.errno == errno.EFBIG:
        return "file size limit reached (ulimit -f)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return exc.strerror or str(exc)
