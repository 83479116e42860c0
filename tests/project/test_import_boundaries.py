"""Layers depend one way, packages form no cycle, only the store runs SQL, and the proxy process
never imports ragas, litellm, the evaluators or replay.

core (config, store, errors) <- live path and shadow worker <- evaluate <- report/gate <- replay
<- review UI <- simulator and demo. A module may import its own layer and the layers below it, at module level
or inside a function; core/cli.py names commands of every layer as strings, loaded on use.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]

# Lowest first; a module belongs to the longest prefix that names it.
LAYERS = [
    ("core", ("shadowtap.core",)),
    ("live", ("shadowtap.proxy",)),
    ("evaluate", ("shadowtap.evaluators",)),
    ("report", ("shadowtap.evaluators.report",)),
    ("replay", ("shadowtap.replay",)),
    ("review", ("shadowtap.evaluators.review",)),
    ("top", ("shadowtap.proxy.demo", "shadowtap.proxy.demo_reviewers", "shadowtap.proxy.demo_workload",
             "shadowtap.proxy.demo_data", "shadowtap.proxy.simulator")),
]


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path, *, module_level_only: bool) -> set[str]:
    """shadowtap modules that `name` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else ast.walk(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:  # `from package import module` imports the module
                targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {_owning_module(target) for target in targets if target.startswith("shadowtap.")} - {None, name}


def _owning_module(target: str) -> str | None:
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def _layer(module: str) -> int:
    best, depth = 0, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > depth:
                best, depth = index, len(prefix)
    return best


def test_every_module_imports_only_its_own_layer_and_the_layers_below():
    offenders = []
    for name, path in MODULES.items():
        for target in _imports(name, path, module_level_only=False):
            if _layer(target) > _layer(name):
                offenders.append(f"{name} ({LAYERS[_layer(name)][0]}) imports {target} ({LAYERS[_layer(target)][0]})")
    assert offenders == []


def test_no_two_packages_import_each_other():
    """Package A importing from package B and B from A (directly or round a loop) is a cycle,
    whichever modules carry it; a package and its own subpackages are one unit here."""
    def package_of(module: str) -> str:
        path = MODULES[module]
        return module if path.name == "__init__.py" else module.rpartition(".")[0]

    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in MODULES.items():
        for target in _imports(name, path, module_level_only=False):
            source, sink = package_of(name), package_of(target)
            related = source == sink or sink.startswith(source + ".") or source.startswith(sink + ".")
            if not related:
                edges[source].add(sink)
    cycles = [cycle for cycle in _strongly_connected(edges) if len(cycle) > 1]
    assert cycles == []


def test_no_module_level_import_cycle():
    edges = {name: _imports(name, path, module_level_only=True) for name, path in MODULES.items()}
    cycles = [cycle for cycle in _strongly_connected(edges) if len(cycle) > 1]
    assert cycles == []


def _strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative enough for a few hundred modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(edges.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return components


_SQL = re.compile(r"""\.(execute|executemany|executescript|query)\(|["'](select|insert|update|delete)\s""",
                  re.IGNORECASE)


def test_only_the_store_package_runs_sql():
    offenders = []
    for name, path in MODULES.items():
        if name.startswith("shadowtap.core.store"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if _SQL.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


_DRIVER = re.compile(r"^\s*(import|from)\s+(sqlite3|psycopg)\b")


def test_only_the_store_package_names_a_database_driver():
    """Outside core/store, database failures are caught as core.store.errors names them, so a
    second backend needs no edits there."""
    offenders = []
    for name, path in MODULES.items():
        if name.startswith("shadowtap.core.store"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if _DRIVER.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_proxy_modules_never_import_evaluators_replay_ragas_or_litellm_at_module_level():
    offenders = []
    for name, path in MODULES.items():
        if not name.startswith("shadowtap.proxy"):
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{name}: {imported}" for imported in names
                          if imported.split(".")[0] in ("ragas", "litellm")
                          or imported.startswith(("shadowtap.evaluators", "shadowtap.replay"))]
    assert offenders == []


@pytest.mark.e2e
def test_a_serving_app_has_not_imported_litellm_or_ragas(tmp_path):
    script = f"""
import asyncio, sys
from shadowtap.core.config import config_from_dict
from shadowtap.proxy.app import create_app
import shadowtap.core.cli, shadowtap.proxy.server, shadowtap.proxy.serve_command
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
