"""ruff (pyflakes, pycodestyle, import order, pyupgrade; settings in pyproject.toml) is clean, so
the README's test command, which CI runs, fails on a lint error like on any other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_finds_nothing_in_the_package_tests_and_benchmarks():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "core", "proxy", "evaluators",
                             "replay", "tests", "bench"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
