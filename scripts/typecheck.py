"""Run mypy over the installed layout: `shadowtap.core`, `.proxy`, `.evaluators`, `.replay`.

mypy cannot follow setuptools' editable-install import hook, so this builds a throwaway tree
where `shadowtap/<part>` links to each top-level folder, and checks it. Exit code is mypy's.
Usage: python scripts/typecheck.py [extra mypy arguments]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(arguments: list[str]) -> int:
    package_dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    with tempfile.TemporaryDirectory(prefix="shadowtap-typecheck-") as scratch:
        namespace = Path(scratch) / "shadowtap"
        namespace.mkdir()
        packages = []
        for package, folder in package_dirs.items():
            (namespace / package.rpartition(".")[2]).symlink_to(ROOT / folder, target_is_directory=True)
            packages += ["-p", package]
        command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), *packages, *arguments]
        return subprocess.run(command, cwd=scratch).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
