"""The README documents every command, option-bearing subcommand and config key that exists."""

from pathlib import Path

import click
from click.testing import CliRunner

from shadowtap.core.cli import cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


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


def test_every_cli_command_is_documented_in_the_readme():
    commands = all_commands(cli)
    assert "shadowtap captures export" in commands
    missing = [command for command in commands if f"`{command}" not in README]
    assert missing == []


def test_every_config_key_is_documented_in_the_readme():
    from tests.test_config import config_section_types

    missing = []
    for section, section_type in config_section_types().items():
        heading = "[[candidates]]" if section == "candidates" else f"[{section}]"
        for key in section_type.__dataclass_fields__:
            if f"{heading} {key}" not in README and not _listed_with_siblings(heading, key):
                missing.append(f"{heading} {key}")
    assert missing == []


def _listed_with_siblings(heading: str, key: str) -> bool:
    """Table rows may group keys: `[server] log_level`, `log_format`, `log_file`."""
    for line in README.splitlines():
        if line.startswith(f"| `{heading} ") and f"`{key}`" in line.split("|")[1]:
            return True
    return False


def test_readme_starts_with_the_two_commands_and_ci_runs_the_second_verbatim():
    block = README.split("```")[1].strip().splitlines()
    assert len(block) == 2
    assert block[0].endswith("shadowtap demo")
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert block[1] in ci


def test_every_command_has_help():
    runner = CliRunner()
    for command in all_commands(cli):
        result = runner.invoke(cli, command.split()[1:] + ["--help"])
        assert result.exit_code == 0, command
        assert "Usage:" in result.output
