"""`shadowtap simulator` and `python -m shadowtap.proxy.simulator` are one command: the same
options, the knobs in --help, and a port in use said in one sentence with exit code 2."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from shadowtap.core.cli import cli
from shadowtap.proxy.local_processes import free_port, shadowtap_command, stop_process, wait_until_serving
from shadowtap.proxy.simulator.__main__ import main as module_main

ROOT = Path(__file__).resolve().parents[2]
KNOBS_SOURCE = ROOT / "proxy" / "simulator" / "knobs.py"


def knob_headers() -> set[str]:
    """Every x-sim-* header the simulator reads."""
    return set(re.findall(r'"(x-sim-[a-z0-9-]+)"', KNOBS_SOURCE.read_text()))


@pytest.fixture
def taken_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock.getsockname()[1]
    sock.close()


def test_help_lists_every_x_sim_knob():
    result = CliRunner().invoke(cli, ["simulator", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert len(knob_headers()) >= 11
    missing = [header for header in knob_headers() if header not in result.output]
    assert missing == []


def test_every_knob_is_in_the_simulator_docs():
    docs = (ROOT / "docs" / "simulator.md").read_text()
    assert [header for header in knob_headers() if f"`{header}" not in docs] == []


def test_both_spellings_take_the_same_options(capsys):
    shadowtap_help = CliRunner().invoke(cli, ["simulator", "--help"]).output
    with pytest.raises(SystemExit) as exit_info:
        module_main(["--help"])
    assert exit_info.value.code == 0
    module_help = capsys.readouterr().out
    options = set(re.findall(r"--[a-z-]+", shadowtap_help))
    assert {"--record-requests", "--seed", "--require-api-key", "--port"} <= options
    assert options == set(re.findall(r"--[a-z-]+", module_help))


def test_a_port_in_use_is_one_sentence_and_exit_code_2(taken_port):
    result = CliRunner().invoke(cli, ["simulator", "--port", str(taken_port)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"shadowtap: cannot listen on 127.0.0.1:{taken_port}: the port is already in use by another process; "
        "stop it, or choose another port with --port"]


@pytest.mark.e2e
def test_shadowtap_simulator_records_requests_like_the_module_does():
    port = free_port()
    process = subprocess.Popen(shadowtap_command("simulator", "--port", str(port), "--record-requests"),
                               stderr=subprocess.DEVNULL)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/v1/models", process)
        httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions",
                   json={"model": "sim-small", "messages": [{"role": "user", "content": "recorded?"}]})
        recorded = httpx.get(f"http://127.0.0.1:{port}/sim/requests").json()
        assert [request["path"] for request in recorded][-1] == "/v1/chat/completions"
        assert "recorded?" in recorded[-1]["raw"]
    finally:
        stop_process(process)


@pytest.mark.e2e
def test_serve_on_a_port_in_use_exits_2_with_one_sentence_before_starting_anything(tmp_path, taken_port):
    config = tmp_path / "shadowtap.toml"
    config.write_text(f'[server]\nport = {taken_port}\n[primary]\nbase_url = "http://127.0.0.1:9/v1"\n'
                      f'[store]\npath = "{tmp_path / "c.db"}"\n')
    result = subprocess.run(shadowtap_command("serve", "--config", str(config)), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"shadowtap: cannot listen on 127.0.0.1:{taken_port}: the port is already in use by another process; "
        "stop it, or choose another port with --port or [server] port"]
    assert result.stdout == ""

