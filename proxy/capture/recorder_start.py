"""The recorder process's entry point and options: what the live process imports to start it.

Nothing heavy is imported at module level, so the spawned child can keep out what it never uses
before the rest of shadowtap loads: sqlite-utils imports pandas (with numpy and pyarrow, about
65 MB of memory) whenever pandas is installed, and the recorder never hands it a DataFrame.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class RecorderOptions:
    """The capture writer's settings ([store]), as the recorder's own writer uses them."""

    queue_size: int
    batch_size: int
    flush_interval_s: float
    capture_all_endpoints: bool
    queue_max_bytes: int | None
    close_timeout_s: float = 30.0


@dataclass(frozen=True)
class RowBuilderSettings:
    """What a child process needs to build rows exactly as the live process would have."""

    emails: bool
    phones: bool
    card_numbers: bool
    patterns: tuple[str, ...]
    replacement: str
    client_key_salt: bytes | None
    max_body_bytes: int


def recorder_main(*args: object) -> None:
    """The child's target: see recorder.run_recorder for the arguments."""
    # A None entry makes `import pandas` fail as if it were not installed (the import system's rule).
    sys.modules.setdefault("pandas", None)  # type: ignore[arg-type]
    from shadowtap.proxy.capture.recorder import run_recorder

    run_recorder(*args)  # type: ignore[arg-type]
