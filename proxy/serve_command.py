"""`shadowtap serve`: check the config and the store, then run the proxy."""

from __future__ import annotations

import click

from shadowtap.core.cli_common import fail_usage, load_config_or_exit
from shadowtap.core.errors import ConfigError, StoreError


@click.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="TOML config file (see config.example.toml).")
@click.option("--host", default=None, help="Override [server] host.")
@click.option("--port", default=None, type=int, help="Override [server] port.")
@click.option("--workers", default=None, type=int, help="Override [server] workers (processes sharing the store).")
def serve(config_path: str, host: str | None, port: int | None, workers: int | None) -> None:
    """Run the proxy: forward /v1/* to the primary and capture every exchange."""
    from shadowtap.core.store import CaptureStore
    from shadowtap.core.store.preflight import check_store_writable
    from shadowtap.proxy.server import serve as run_server

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
