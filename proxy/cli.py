"""The `shadowtap` command line. It decides what to run; the modules it calls decide how.

Exit codes: 0 ok, 1 checks failed, 2 usage or config error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from shadowtap.proxy import __version__
from shadowtap.proxy.cli_common import fail_usage, load_config_or_exit
from shadowtap.proxy.captures_cli import captures
from shadowtap.proxy.feedback_cli import feedback
from shadowtap.proxy.errors import ConfigError, StoreError


class PluginGroup(click.Group):
    """Adds commands registered under the `shadowtap.commands` entry point (eval, report, replay…),
    imported only when listed or run, so `proxy` never imports them at module level."""

    def _plugins(self) -> dict:
        from importlib.metadata import entry_points

        return {entry.name: entry for entry in entry_points(group="shadowtap.commands")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugins()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in self._plugins():
            command = self._plugins()[name].load()
        return command


@click.group(cls=PluginGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="shadowtap")
def cli() -> None:
    """shadowtap: a shadow-mode evaluation proxy for OpenAI-compatible LLM APIs.

    Point your app's base URL at `shadowtap serve`; every exchange is captured for offline
    scoring, comparison and replay. Start with `shadowtap demo`.
    """


@cli.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="TOML config file (see config.example.toml).")
@click.option("--host", default=None, help="Override [server] host.")
@click.option("--port", default=None, type=int, help="Override [server] port.")
@click.option("--workers", default=None, type=int, help="Override [server] workers (processes sharing the store).")
def serve(config_path: str, host: str | None, port: int | None, workers: int | None) -> None:
    """Run the proxy: forward /v1/* to the primary and capture every exchange."""
    from shadowtap.proxy.server import serve as run_server
    from shadowtap.proxy.store import CaptureStore
    from shadowtap.proxy.store.preflight import check_store_writable

    config = load_config_or_exit(config_path)
    try:
        config = config.with_overrides(host=host, port=port, workers=workers)
        # Fail fast, before binding the port: an unwritable or full disk, then the schema.
        check_store_writable(config.store.path)
        CaptureStore.open(config.store.path).close()
        run_server(config)
    except ConfigError as exc:
        fail_usage(f"config error: {exc}")
    except StoreError as exc:
        fail_usage(str(exc))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9000, show_default=True, type=int)
@click.option("--latency-ms", default=0, show_default=True, type=int, help="Delay before each answer.")
@click.option("--ttft-ms", default=0, show_default=True, type=int, help="Delay before a stream's first chunk.")
@click.option("--chunk-delay-ms", default=0, show_default=True, type=int, help="Delay between stream chunks.")
@click.option("--error-rate", default=0.0, show_default=True, type=float,
              help="Share of requests answered with --error-status.")
@click.option("--error-status", default=500, show_default=True, type=int)
def simulator(host: str, port: int, latency_ms: int, ttft_ms: int, chunk_delay_ms: int,
              error_rate: float, error_status: int) -> None:
    """Run the simulated OpenAI-compatible upstream (deterministic, offline)."""
    from shadowtap.proxy.simulator.server import SimulatorSettings, run_simulator

    settings = SimulatorSettings(latency_ms=latency_ms, ttft_ms=ttft_ms, chunk_delay_ms=chunk_delay_ms,
                                 error_rate=error_rate, error_status=error_status)
    click.echo(f"simulated upstream on http://{host}:{port}/v1 (Ctrl-C to stop)", err=True)
    run_simulator(settings, host=host, port=port)


@cli.command()
@click.option("--dir", "workdir", default="shadowtap-demo", show_default=True, type=click.Path(file_okay=False),
              help="Where the demo writes its store, config and logs.")
@click.option("--requests", "request_count", default=120, show_default=True, type=int,
              help="How many requests the workload sends.")
def demo(workdir: str, request_count: int) -> None:
    """Run the whole loop offline: simulated upstream, proxy, a mixed workload, a summary."""
    from shadowtap.proxy.demo import run_demo

    sys.exit(run_demo(Path(workdir), request_count=request_count))


cli.add_command(captures)
cli.add_command(feedback)


def main() -> None:
    cli(prog_name="shadowtap")


if __name__ == "__main__":
    main()
