"""Shared fixtures: free ports, a simulated upstream and a real `shadowtap serve` process on loopback."""

from __future__ import annotations

import os

# Never let a dependency phone home from the test suite.
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

pytest_plugins = ["tests.servers"]

# Tests that use these fixtures start processes on loopback (a simulated upstream, `shadowtap
# serve`): they are end-to-end, and `pytest -m "not e2e"` leaves them out of the fast loop.
PROCESS_FIXTURES = frozenset({"simulator", "proxy", "proxy_factory"})


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
