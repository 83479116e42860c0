"""The docs are complete and hold together: docs/ documents every command, config key, evaluator
and store table that exists; the README stays a short door that links every page; every relative
link resolves; docs/cli-reference.md is what scripts/cli_reference.py generates from `--help`."""

import dataclasses
import importlib.util
import re
import typing
from pathlib import Path

import click
from click.testing import CliRunner

from shadowtap.core.cli import cli

ROOT = Path(__file__).resolve().parents[2]
DOCS_DIR = ROOT / "docs"
README_PATH = ROOT / "README.md"
README = README_PATH.read_text()
PAGES = sorted(DOCS_DIR.glob("*.md"))
CLI_REFERENCE = DOCS_DIR / "cli-reference.md"
# The pages people write; the generated CLI reference would vouch for every command by itself.
DOCS = "\n".join(page.read_text() for page in PAGES if page != CLI_REFERENCE)
README_MAX_LINES = 200


def all_commands(group: click.Group, prefix: str = "shadowtap") -> list[str]:
    names = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        full = f"{prefix} {name}"
        names.append(full)
        if isinstance(command, click.Group):
            names.extend(all_commands(command, full))
    return names


def test_every_cli_command_is_documented_in_the_docs():
    commands = all_commands(cli)
    assert "shadowtap captures export" in commands
    missing = [command for command in commands if f"`{command}" not in DOCS]
    assert missing == []


def config_keys() -> list[tuple[str, str]]:
    """(heading, key) for every config key, nested arrays of tables included:
    ("[server]", "port"), ("[[candidates]]", "name"), ("[[freshness.policies]]", "max_age_days")."""
    from tests.core.test_config import config_section_types

    keys = []
    for section, section_type in config_section_types().items():
        heading = "[[candidates]]" if section == "candidates" else f"[{section}]"
        hints = typing.get_type_hints(section_type)
        for key in section_type.__dataclass_fields__:
            keys.append((heading, key))
            item_type = (typing.get_args(hints[key]) or (None,))[0]
            if typing.get_origin(hints[key]) is list and dataclasses.is_dataclass(item_type):
                keys.extend((f"[[{section}.{key}]]", nested) for nested in item_type.__dataclass_fields__)
    return keys


def test_every_config_key_is_documented_in_the_docs():
    keys = config_keys()
    assert ("[[contracts.rules]]", "schema_file") in keys
    missing = [f"{heading} {key}" for heading, key in keys
               if f"{heading} {key}" not in DOCS and not _listed_with_siblings(heading, key)]
    assert missing == []


def _listed_with_siblings(heading: str, key: str) -> bool:
    """Table rows may group keys: `[server] log_level`, `log_format`, `log_file`."""
    for line in DOCS.splitlines():
        if line.startswith(f"| `{heading} ") and f"`{key}`" in line.split("|")[1]:
            return True
    return False


def test_every_evaluator_is_documented_in_the_scoring_page():
    from shadowtap.evaluators.registry import BUILTIN

    scoring = (DOCS_DIR / "scoring.md").read_text()
    missing = [name for name in BUILTIN if f"`{name}`" not in scoring]
    assert missing == []


def test_every_store_table_is_in_the_schema_page_and_every_column_in_the_docs(tmp_path):
    from shadowtap.core.store import CaptureStore

    schema_page = (DOCS_DIR / "store-schema.md").read_text()
    store = CaptureStore.open(tmp_path / "s.db")
    try:
        tables = {name: [column.name for column in store.db[name].columns] for name in store.db.table_names()}
    finally:
        store.close()
    assert "exchanges" in tables
    assert [name for name in tables if f"`{name}`" not in schema_page] == []
    missing = [f"{table}.{column}" for table, columns in tables.items() for column in columns
               if f"`{column}`" not in DOCS]
    assert missing == []


def test_readme_starts_with_the_two_commands_and_ci_runs_the_second_verbatim():
    block = README.split("```")[1].strip().splitlines()
    assert len(block) == 2
    assert block[0].endswith("shadowtap demo")
    ci = (ROOT / ".ci" / "run").read_text()
    assert block[1] in ci


def test_readme_is_at_most_200_lines():
    assert len(README.splitlines()) <= README_MAX_LINES


def test_readme_holds_no_reference_tables():
    assert [line for line in README.splitlines() if line.startswith("|")] == []


def test_every_command_has_help():
    runner = CliRunner()
    for command in all_commands(cli):
        result = runner.invoke(cli, command.split()[1:] + ["--help"])
        assert result.exit_code == 0, command
        assert "Usage:" in result.output


def _without_code(text: str) -> str:
    """The text outside fenced blocks and code spans, where Markdown links are links."""
    outside, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            outside.append(line)
    return re.sub(r"(`+)(.+?)(?<!`)\1(?!`)", "", "\n".join(outside), flags=re.DOTALL)


def relative_links(path: Path) -> list[tuple[Path, str]]:
    """(target file, anchor or "") of every relative link in a Markdown file."""
    links = []
    for target in re.findall(r"\]\(([^)\s]+)\)", _without_code(path.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto:
        file_part, _, anchor = target.partition("#")
        links.append(((path.parent / file_part).resolve() if file_part else path.resolve(), anchor))
    return links


def heading_anchors(path: Path) -> set[str]:
    """GitHub's anchors for a Markdown file's headings: lower case, punctuation dropped, spaces
    as hyphens, a repeated anchor numbered."""
    anchors: set[str] = set()
    outside_fences, fenced = [], False
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            outside_fences.append(line)
    for line in outside_fences:
        match = re.match(r"#{1,6} (.+)", line)
        if not match:
            continue
        anchor = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
        numbered, count = anchor, 0
        while numbered in anchors:
            count += 1
            numbered = f"{anchor}-{count}"
        anchors.add(numbered)
    return anchors


def test_every_docs_page_is_linked_from_the_readme_and_the_docs_index():
    pages = {page.resolve() for page in PAGES}
    from_readme = {target for target, _ in relative_links(README_PATH)}
    from_index = {target for target, _ in relative_links(DOCS_DIR / "index.md")}
    assert sorted(page.name for page in pages - from_readme) == []
    assert sorted(page.name for page in pages - from_index - {(DOCS_DIR / "index.md").resolve()}) == []


def test_every_relative_link_in_the_readme_and_docs_points_at_something_that_exists():
    broken = []
    for path in [README_PATH, *PAGES]:
        for target, anchor in relative_links(path):
            where = f"{path.relative_to(ROOT)} -> {target.relative_to(ROOT)}"
            if not target.exists():
                broken.append(where)
            elif anchor and target.suffix == ".md" and anchor not in heading_anchors(target):
                broken.append(f"{where}#{anchor}")
    assert broken == []


def test_cli_reference_is_what_scripts_cli_reference_generates_now():
    spec = importlib.util.spec_from_file_location("cli_reference", ROOT / "scripts" / "cli_reference.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    wanted = script.render()
    current = CLI_REFERENCE.read_text()
    assert script.stale_headings(current, wanted) == [], "run: python scripts/cli_reference.py"
    assert current == wanted
    assert {f"## {command}" for command in all_commands(cli)} <= set(current.splitlines())
