"""What `shadowtap serve` keeps out of the live process's memory (proxy/live_imports.py).

Each test runs the real command (or, for [server] workers, the app factory a worker imports) in a
process of its own, up to the moment uvicorn would start serving, and reads that process's
`sys.modules`: module presence, not megabytes or seconds.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

# Libraries the live process never needs (pandas and numpy came with sqlite-utils; pyarrow with
# pandas; httpx, rich and rapidfuzz with modules the live process imports for one function it
# never calls), the evaluation stack, and the shadow machinery that only candidates need.
KEPT_OUT = ("pandas", "numpy", "pyarrow", "httpx", "rich", "rapidfuzz", "jsonschema", "litellm", "ragas", "openai",
            "shadowtap.proxy.shadow", "shadowtap.evaluators", "shadowtap.replay")

# Run by the child: the serve command as `shadowtap serve` runs it, except that once uvicorn has
# started (the app built, its lifespan run, capture handed to the recorder) it reports what is
# loaded and shuts down instead of serving.
SERVE_AND_REPORT = """
import json, sys
import uvicorn

async def report_instead_of_serving(self):
    print("LOADED " + json.dumps(sorted(name for name, module in sys.modules.items() if module is not None)))
    print("BLOCKED " + json.dumps(sorted(name for name, module in sys.modules.items() if module is None)))
    self.should_exit = True

uvicorn.Server.main_loop = report_instead_of_serving
sys.argv = ["shadowtap", "serve", "--config", sys.argv[1]]
from shadowtap.core.cli import main
main()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve_and_report(tmp_path, extra_config: str = "") -> tuple[list[str], list[str]]:
    config = tmp_path / "shadowtap.toml"
    config.write_text(f'[server]\nport = {_free_port()}\nlog_level = "warning"\n'
                      '[primary]\nbase_url = "http://127.0.0.1:9/v1"\n'
                      f'[store]\npath = "{tmp_path / "captures.db"}"\n' + extra_config)
    result = subprocess.run([sys.executable, "-c", SERVE_AND_REPORT, str(config)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    lines = {line.partition(" ")[0]: json.loads(line.partition(" ")[2])
             for line in result.stdout.splitlines() if line.startswith(("LOADED ", "BLOCKED "))}
    return lines["LOADED"], lines["BLOCKED"]


def _kept_out_but_loaded(loaded: list[str]) -> list[str]:
    return [name for name in loaded if any(name == kept or name.startswith(kept + ".") for kept in KEPT_OUT)]


@pytest.mark.e2e
def test_serve_without_candidates_loads_none_of_the_libraries_the_live_path_does_not_use(tmp_path):
    loaded, _ = _serve_and_report(tmp_path)
    assert "sqlite_utils" in loaded  # the store is opened here: the check below is not vacuous
    assert _kept_out_but_loaded(loaded) == []


@pytest.mark.e2e
def test_serve_leaves_pandas_and_numpy_importable_for_anyone_else_in_its_process(tmp_path):
    _, blocked = _serve_and_report(tmp_path)
    assert not {"pandas", "numpy"} & set(blocked)


@pytest.mark.e2e
def test_serve_with_a_candidate_leaves_the_shadow_worker_and_litellm_to_the_worker_process(tmp_path):
    loaded, _ = _serve_and_report(tmp_path, '[[candidates]]\nname = "small"\nmodel = "openai/small"\n'
                                            'api_base = "http://127.0.0.1:9/v1"\nallow_private_network = true\n')
    assert "shadowtap.proxy.shadow.dispatcher" in loaded
    assert [name for name in loaded if name == "shadowtap.proxy.shadow.worker"
            or name.split(".")[0] in ("litellm", "pandas", "numpy", "httpx", "openai")] == []


@pytest.mark.e2e
def test_each_server_worker_builds_its_app_without_pandas_or_numpy(tmp_path):
    """With [server] workers > 1, uvicorn imports the app factory by name in each worker process."""
    config = tmp_path / "shadowtap.toml"
    config.write_text('[primary]\nbase_url = "http://127.0.0.1:9/v1"\n'
                      f'[store]\npath = "{tmp_path / "captures.db"}"\n')
    script = """
import importlib, json, os, sys
from shadowtap.proxy import multiworker
os.environ[multiworker.CONFIG_PATH_ENV] = sys.argv[1]
module, _, factory = multiworker.APP_FACTORY.partition(":")
getattr(importlib.import_module(module), factory)()
print(json.dumps(sorted(name for name, module in sys.modules.items() if module is not None)))
"""
    result = subprocess.run([sys.executable, "-c", script, str(config)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert "shadowtap.proxy.app" in loaded
    assert _kept_out_but_loaded(loaded) == []
