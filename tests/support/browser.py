"""Headless Chromium for the tests that open an HTML page (installed by .ci/install-browser)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess

import pytest


def chromium(tmp_path, *arguments: str, timeout_s: float = 60) -> str:
    """Run headless Chromium on the page; its stdout. Skips, saying why, when it is not installed."""
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("Debian's chromium is not installed (run .ci/install-browser): the HTML report was not "
                    "opened in a browser")
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
               f"--user-data-dir={tmp_path / 'chromium-profile'}", *arguments]
    # Its own session, so a hung browser's helper processes all go when it is killed.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "HOME": str(tmp_path)}, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"chromium did not finish within {timeout_s}s: a script in the page (an alert() from "
                    "unescaped captured text blocks it) or a network wait")
    assert process.returncode == 0, stderr[-2000:]
    return stdout


