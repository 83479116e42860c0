"""The `shadowtap` command line: every command of shadowtap's own, registered here by name and
imported only when it runs (or `--help` lists it), so `shadowtap serve` loads the proxy alone.

Third-party commands register under the `shadowtap.commands` entry point. Exit codes: 0 ok,
1 checks or the gate failed, 2 usage or config error.
"""

from __future__ import annotations

import importlib

import click

from shadowtap.core import __version__

# name -> "module:attribute" of a click command, in the layer that owns it.
COMMANDS = {
    "serve": "shadowtap.proxy.serve_command:serve",
    "check": "shadowtap.core.check_cli:check",
    "captures": "shadowtap.core.captures_cli:captures",
    "feedback": "shadowtap.core.feedback_cli:feedback",
    "canary": "shadowtap.core.canary_cli:canary",
    "ship": "shadowtap.core.ship.cli:ship",
    "store": "shadowtap.core.store_cli:store_group",
    "eval": "shadowtap.evaluators.cli:eval_command",
    "report": "shadowtap.evaluators.report.cli:report_command",
    "gate": "shadowtap.evaluators.report.cli:gate_command",
    "ui": "shadowtap.evaluators.review.command:ui",
    "replay": "shadowtap.replay.cli:replay_group",
    "golden": "shadowtap.replay.golden_cli:golden_group",
    "simulator": "shadowtap.proxy.simulator.command:simulator",
    "demo": "shadowtap.proxy.demo:demo",
}


def _load(target: str) -> click.Command:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


class LazyGroup(click.Group):
    """Commands from COMMANDS and from the `shadowtap.commands` entry point, loaded on use."""

    def _plugins(self) -> dict:
        from importlib.metadata import entry_points

        return {entry.name: entry for entry in entry_points(group="shadowtap.commands")
                if entry.name not in COMMANDS}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self._plugins()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            return _load(COMMANDS[name])
        plugin = self._plugins().get(name)
        return plugin.load() if plugin is not None else None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="shadowtap")
def cli() -> None:
    """shadowtap: a shadow-mode evaluation proxy for OpenAI-compatible LLM APIs.

    Point your app's base URL at `shadowtap serve`; every exchange is captured for offline
    scoring, comparison and replay. Start with `shadowtap demo`.
    """


def main() -> None:
    cli(prog_name="shadowtap")


if __name__ == "__main__":
    main()
