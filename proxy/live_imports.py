"""What the live process leaves out of its memory that a library would load for it.

sqlite-utils imports pandas and numpy whenever they are installed (pandas brings pyarrow): about
80 MB of resident memory and half a second of start-up CPU, for DataFrame and numpy column types the
live process never hands it. The live process imports sqlite-utils through this module before
anything else can, with those two hidden for the length of that one import. Afterwards both are
importable again, by anyone: only sqlite-utils' optional support for their types stays off, in
this process alone. (The recorder, a process with no other job, keeps pandas out for good instead:
capture/recorder_start.py.)
"""

from __future__ import annotations

import importlib
import sys

# Optional imports of sqlite-utils that the live process does without.
HIDDEN_FROM_SQLITE_UTILS = ("pandas", "numpy")


def import_sqlite_utils_without_dataframes() -> None:
    """Import sqlite-utils with HIDDEN_FROM_SQLITE_UTILS unimportable meanwhile. Does nothing once
    sqlite-utils is loaded, and hides nothing already loaded (whoever loaded it needs it)."""
    if "sqlite_utils" in sys.modules:
        return
    hidden = [name for name in HIDDEN_FROM_SQLITE_UTILS if name not in sys.modules]
    for name in hidden:
        # A None entry makes `import name` raise ImportError, as if it were not installed.
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        importlib.import_module("sqlite_utils")
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
