"""Fault injection, a capture store that cannot be opened at start-up: live traffic flows anyway,
the reason is said with the file's name, /healthz says the store is failing, and capture resumes
once the store can be opened; with --require-store the proxy refuses to start. (Issue 12, item 5.)"""

from __future__ import annotations

import os
import subprocess
import time

import httpx
import pytest

from shadowtap.proxy.local_processes import proxy_command
from tests.support.fault_processes import start_serve, write_serve_config
from tests.support.fault_tools import QUESTION
from tests.support.store_reading import wait_for_rows

pytestmark = pytest.mark.timeout(120)


def corrupt_store(path) -> None:
    path.write_bytes(b"this is not a database, it is a file someone truncated\n" * 200)


def test_a_corrupt_store_does_not_stop_live_traffic_and_capture_resumes_once_it_is_replaced(simulator, tmp_path):
    config_path, port = write_serve_config(tmp_path, simulator.base_url)
    store_path = tmp_path / "captures.db"
    corrupt_store(store_path)
    serve = start_serve(config_path, port)
    try:
        answered = httpx.post(f"{serve.url}/v1/chat/completions", json=QUESTION, timeout=10)
        assert answered.status_code == 200 and answered.json()["choices"][0]["message"]["content"]
        assert serve.health()["capture_store"] == "failing"
        stderr = (tmp_path / "stderr.log").read_text()
        assert str(store_path) in stderr and "file is not a database" in stderr
        assert "serving WITHOUT capture" in stderr

        os.replace(store_path, tmp_path / "captures.db.corrupt")  # what the message tells an operator to do
        deadline = time.monotonic() + 30
        while serve.health()["capture_store"] != "ok":
            assert time.monotonic() < deadline, "capture never resumed after the store was replaced"
            time.sleep(0.2)
        later = httpx.post(f"{serve.url}/v1/chat/completions", json=QUESTION, timeout=10)
        assert later.status_code == 200
        rows = wait_for_rows(store_path, 2)  # the first request waited in the queue, and is written too
        assert {row["id"] for row in rows} >= {answered.headers["x-shadowtap-exchange-id"],
                                               later.headers["x-shadowtap-exchange-id"]}
    finally:
        assert serve.stop() == 0


def test_with_require_store_a_corrupt_store_refuses_to_start_naming_the_file(simulator, tmp_path):
    config_path, _ = write_serve_config(tmp_path, simulator.base_url)
    corrupt_store(tmp_path / "captures.db")
    result = subprocess.run([*proxy_command(config_path), "--require-store"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert str(tmp_path / "captures.db") in result.stderr and "file is not a database" in result.stderr
