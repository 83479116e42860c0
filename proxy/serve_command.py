"""`shadowtap serve`: check the config and the store, then run the proxy."""

from __future__ import annotations

import click

from shadowtap.core.cli_common import fail_usage, load_config_or_exit
from shadowtap.core.errors import ConfigError, ListenError, StoreError


@click.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="TOML config file (see config.example.toml).")
@click.option("--host", default=None, help="Override [server] host.")
@click.option("--port", default=None, type=int, help="Override [server] port.")
@click.option("--workers", default=None, type=int, help="Override [server] workers (processes sharing the store).")
@click.option("--require-store", is_flag=True,
              help="Refuse to start (exit 2) when the capture store cannot be opened or written. By default "
                   "the proxy serves without capture until it can, and /healthz says capture_store: failing.")
def serve(config_path: str, host: str | None, port: int | None, workers: int | None, require_store: bool) -> None:
    """Run the proxy: forward /v1/* to the primary and capture every exchange.

    At start-up it also runs the checks of `shadowtap check` that need no litellm (every *_env
    variable set, the primary reachable) and, in the shadow worker, the candidates' model strings;
    each problem is logged as a warning and the proxy starts anyway.

    A capture store that cannot be opened or written (a corrupt file, a full disk, an unwritable
    directory, a lock held too long) does not stop live traffic: the proxy serves, says why on
    stderr and in the log, reports capture_store: failing on /healthz, and keeps retrying the store;
    captures wait in the bounded queue meanwhile. With --require-store it refuses to start instead.

    When an enabled candidate has a [candidates.canary] table, the canary guard loop (`shadowtap
    canary guard`) runs beside it as a child process, stopped with it.

    Exit codes: 0 stopped cleanly; 1 the app failed to start; 2 usage or config error, an
    unusable store with --require-store, or a port already in use (one sentence on stderr,
    nothing started).
    """
    from shadowtap.proxy.live_imports import import_sqlite_utils_without_dataframes

    import_sqlite_utils_without_dataframes()  # first: the store and the app below import sqlite-utils
    from shadowtap.core.store import CaptureStore
    from shadowtap.core.store.preflight import check_store_writable
    from shadowtap.proxy.listening import check_port_free
    from shadowtap.proxy.local_processes import start_canary_guard, stop_process
    from shadowtap.proxy.server import serve as run_server

    config = load_config_or_exit(config_path)
    try:
        config = config.with_overrides(host=host, port=port, workers=workers)
        # Before binding the port: an unwritable or full disk, then the schema.
        try:
            check_store_writable(config.store.path)
            CaptureStore.open(config.store.path).close()
        except StoreError as exc:
            if require_store:
                raise
            click.echo(f"shadowtap: {exc}; serving WITHOUT capture until the store can be opened (retried every "
                       "few seconds; /healthz says capture_store: failing). --require-store refuses to start "
                       "instead.", err=True)
        guard = None
        if config.canaries_configured():
            # A port in use must stop everything before anything starts, the guard loop included.
            check_port_free(config.server.host, config.server.port, option="--port or [server] port")
            guard = start_canary_guard(config_path)
        try:
            run_server(config)
        finally:
            if guard is not None:
                stop_process(guard)
    except ConfigError as exc:
        fail_usage(f"config error: {exc}")
    except (StoreError, ListenError) as exc:
        fail_usage(str(exc))
