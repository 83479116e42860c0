"""What a user installs: one import name, `shadowtap`, with every dependency the code imports
declared in pyproject.toml, and a wheel that serves from a clean virtualenv without the lock."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from shadowtap.proxy.local_processes import free_port, wait_until_serving

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE_DIRS = PYPROJECT["tool"]["setuptools"]["package-dir"]
# Imported only inside a function and only when present (optional accelerators of other packages).
OPTIONAL_IMPORTS = {"uvloop"}


def _package_folders() -> dict[str, Path]:
    """Every importable package under the mapped folders, by its dotted name."""
    found = {}
    for name, folder in PACKAGE_DIRS.items():
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            relative = init.parent.relative_to(ROOT / folder).parts
            found[".".join((name, *relative))] = init.parent
    return found


def _normalised(requirement: str) -> str:
    return re.split(r"[\s<>=!\[;~]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_package_folder_is_listed_in_pyproject():
    assert sorted(PYPROJECT["tool"]["setuptools"]["packages"]) == sorted(_package_folders())


def test_every_distribution_the_code_imports_is_a_declared_dependency():
    declared = {_normalised(requirement) for requirement in PYPROJECT["project"]["dependencies"]}
    distributions = importlib.metadata.packages_distributions()
    missing = set()
    for folder in _package_folders().values():
        for path in folder.glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top == "shadowtap" or top in OPTIONAL_IMPORTS:
                        continue
                    owners = {_normalised(dist) for dist in distributions.get(top, [top])}
                    if not owners & declared:
                        missing.add(f"{top} ({path.relative_to(ROOT)})")
    assert sorted(missing) == []


def test_no_module_imports_the_old_top_level_names():
    offenders = []
    for folder in [*(ROOT / folder for folder in PACKAGE_DIRS.values()), ROOT / "tests", ROOT / "bench"]:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                offenders += [f"{path.relative_to(ROOT)}: {name}" for name in names
                              if name.split(".")[0] in ("proxy", "evaluators", "replay")]
    assert offenders == []


@pytest.mark.e2e
@pytest.mark.timeout(1800)
def test_the_wheel_installs_only_shadowtap_and_runs_every_stage_from_a_clean_venv_without_the_lock(tmp_path):
    """Slow (minutes): resolves every dependency from the package index, as a new user's
    `pip install` would, ignoring requirements.lock."""
    source = tmp_path / "source"  # a copy: building in place would leave build/ in the checkout
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__",
                                                                  "tests", "bench", "shadowtap-demo"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)],
                   check=True, timeout=600)
    [wheel] = wheels.glob("shadowtap-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], capture_output=True,
                             text=True, timeout=1800)
    assert install.returncode == 0, install.stderr[-3000:]
    outside = tmp_path / "elsewhere"  # never the repository, whose folders would shadow the install
    outside.mkdir()
    check = """
import importlib, importlib.util, pkgutil, shadowtap
for name in ("proxy", "evaluators", "replay"):
    assert importlib.util.find_spec(name) is None, name + " is importable"
for package in ("shadowtap.core", "shadowtap.proxy", "shadowtap.evaluators", "shadowtap.replay"):
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
print("ok")
"""
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "RAGAS_DO_NOT_TRACK": "true"}
    imported = subprocess.run([str(python), "-c", check], cwd=outside, capture_output=True, text=True,
                              timeout=300, env=env)
    assert imported.returncode == 0 and imported.stdout.strip() == "ok", imported.stderr[-3000:]

    port = free_port()
    config = outside / "shadowtap.toml"
    config.write_text(f'[server]\nhost = "127.0.0.1"\nport = {port}\n\n[primary]\nbase_url = "http://127.0.0.1:9/v1"\n\n'
                      f'[store]\npath = "{outside / "captures.db"}"\n')
    shadowtap = str(venv / "bin" / "shadowtap")
    server = subprocess.Popen([shadowtap, "serve", "--config", str(config)], cwd=outside, env=env,
                              stderr=subprocess.DEVNULL)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/healthz", server, timeout_s=60)
    finally:
        server.terminate()
        server.wait(30)

    # The demo runs serve, eval, report and replay from the installed package; gate then reads its store.
    demo = subprocess.run([shadowtap, "demo", "--dir", str(outside / "demo"), "--requests", "30"], cwd=outside,
                          env=env, capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    gate = subprocess.run([shadowtap, "gate", "--config", str(outside / "demo" / "shadowtap.toml")], cwd=outside,
                          env=env, capture_output=True, text=True, timeout=300)
    assert gate.returncode in (0, 1), gate.stdout[-3000:] + gate.stderr[-3000:]  # 1: a candidate failed the gate
    assert "Traceback" not in gate.stderr
