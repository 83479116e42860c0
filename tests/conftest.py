"""Shared fixtures: free ports, a simulated upstream and a real `shadowtap serve` process on loopback."""

from __future__ import annotations

import importlib.abc
import os
import sys

# Never let a dependency phone home from the test suite.
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

pytest_plugins = ["tests.support.servers"]


class _FolderNamesAreNotModules(importlib.abc.MetaPathFinder):
    """From the repository root the folders `proxy/`, `core/`... are importable by their bare
    names, which an installed shadowtap does not have: a stale `proxy.x` reference (a string given
    to importlib, say) would pass here and fail for every user. Refuse the bare names."""

    NAMES = frozenset({"core", "proxy", "evaluators", "replay"})

    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in self.NAMES:
            raise ModuleNotFoundError(f"No module named {name!r}: shadowtap's modules are shadowtap.{name}", name=name)
        return None


sys.meta_path.insert(0, _FolderNamesAreNotModules())

# Tests that use these fixtures start processes on loopback (a simulated upstream, `shadowtap
# serve`), as does every test of the fault suite: they are end-to-end, and `pytest -m "not e2e"`
# leaves them out of the fast loop. Other tests that start a process say so with @pytest.mark.e2e.
PROCESS_FIXTURES = frozenset({"simulator", "proxy", "proxy_factory"})
PROCESS_FOLDERS = ("faults",)


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        folder = item.path.parent.name
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())) or folder in PROCESS_FOLDERS:
            item.add_marker(pytest.mark.e2e)
