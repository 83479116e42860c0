"""ruff (pyflakes, pycodestyle, import order, pyupgrade) and mypy are clean (settings in pyproject.toml), so
the README's test command, which CI runs, fails on a lint error like on any other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_finds_nothing_in_the_package_tests_and_benchmarks():
    folders = ["core", "proxy", "evaluators", "replay", "tests", "bench", "scripts"]
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *folders], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_mypy_finds_nothing_in_the_package():
    """Slow when its cache is cold (a minute or so): scripts/typecheck.py checks the installed layout."""
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "typecheck.py")], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
