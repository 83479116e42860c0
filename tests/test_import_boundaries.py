"""The proxy process never imports ragas, litellm, the evaluators or replay."""

import ast
import subprocess
import sys
from pathlib import Path

PROXY = Path(__file__).resolve().parent.parent / "proxy"


def test_proxy_modules_never_import_evaluators_or_replay_at_module_level():
    offenders = []
    for path in PROXY.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only; the CLI may load commands lazily
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {name}" for name in names
                          if name.split(".")[0] in ("ragas", "litellm")
                          or name.startswith(("shadowtap.evaluators", "shadowtap.replay"))]
    assert offenders == []


def test_a_serving_app_has_not_imported_litellm_or_ragas(tmp_path):
    script = f"""
import asyncio, sys
from shadowtap.proxy.config import config_from_dict
from shadowtap.proxy.app import create_app
import shadowtap.proxy.cli, shadowtap.proxy.server
config = config_from_dict({{"primary": {{"base_url": "http://127.0.0.1:9/v1"}},
                            "store": {{"path": {str(tmp_path / 's.db')!r}}}}})
app = create_app(config)

async def lifespan():
    messages = iter([{{"type": "lifespan.startup"}}, {{"type": "lifespan.shutdown"}}])
    sent = []
    async def receive():
        return next(messages)
    async def send(message):
        sent.append(message["type"])
    await app({{"type": "lifespan", "asgi": {{"version": "3.0"}}}}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"], sent

asyncio.run(lifespan())
leaked = sorted(name for name in sys.modules if name.split(".")[0] in ("litellm", "ragas")
                or name.startswith(("shadowtap.evaluators", "shadowtap.replay")))
print(leaked)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
