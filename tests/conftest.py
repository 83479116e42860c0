"""Shared fixtures: free ports, a simulated upstream and a real `shadowtap serve` process on loopback."""

from __future__ import annotations

import os

# Never let a dependency phone home from the test suite.
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

pytest_plugins = ["tests.servers"]
