"""`shadowtap ship`: copy this replica's spool ([store] path) into the shared store ([store] url)."""

from __future__ import annotations

import logging
import signal
import threading
from urllib.parse import urlsplit

import click

from shadowtap.core.cli_common import fail_usage, load_config_or_exit


@click.command("ship")
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
              help="Config file: [store] path is the spool, [store] url or url_env the shared store.")
@click.option("--store", "store_path", default=None, type=click.Path(dir_okay=False),
              help="The spool to ship (default: [store] path).")
@click.option("--once", is_flag=True, help="Ship what the spool holds now, then exit (exit 1 if that failed).")
@click.option("--batch-size", default=5000, show_default=True, type=click.IntRange(1, 100_000),
              help="Rows per PostgreSQL transaction.")
@click.option("--interval", "interval_s", default=1.0, show_default=True, type=click.FloatRange(0.01, 3600),
              help="Seconds between looks at the spool when it has nothing new.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def ship(config_path, store_path, once, batch_size, interval_s, log_level) -> None:
    """Copy new exchanges, shadow rows, feedback and scores from this replica's SQLite spool into the
    shared PostgreSQL store, in batches, idempotently, resuming where it stopped.

    Run one beside each `shadowtap serve`. The live process never waits for it: while PostgreSQL
    is unreachable the shipper retries with backoff and the spool keeps every row; once it is
    back, every row arrives exactly once. With [export.otlp] endpoint set, it also sends each
    shipped exchange and shadow call as an OpenTelemetry span. Stops cleanly on SIGTERM or Ctrl-C.

    Exit codes: 0 stopped cleanly (or --once shipped everything); 1 --once could not reach or
    write the shared store; 2 usage or config error.
    """
    from shadowtap.core.errors import ConfigError, StoreError
    from shadowtap.core.logs import configure_logging
    from shadowtap.core.secrets import configured_secrets
    from shadowtap.core.ship.shipper import Shipper
    from shadowtap.core.store import CaptureStore
    from shadowtap.core.store.backend import safe_url

    config = load_config_or_exit(config_path)
    try:
        url = config.store.shared_url()
    except ConfigError as exc:
        fail_usage(f"config error: {exc}")
    if not url:
        fail_usage("nothing to ship to: set [store] url (or url_env) to the shared PostgreSQL store")
    password = urlsplit(url).password
    secrets = [*configured_secrets(config), *([password] if password else [])]
    try:
        spool = CaptureStore.open(store_path or config.store.path)
    except StoreError as exc:
        fail_usage(str(exc))
    exporter = None
    if config.export.otlp.endpoint:
        from shadowtap.core.ship.otlp import OtlpExporter, server_address_of

        exporter = OtlpExporter(config.export.otlp, spool_redactor(config),
                                server_address=server_address_of(config.primary.base_url))
    shipper = Shipper(spool, lambda: CaptureStore.open(url), batch_size=batch_size, interval_s=interval_s,
                      retention_days=config.store.retention_days,
                      on_shipped=exporter.export_batch if exporter else None)
    try:
        if once:
            try:
                shipped = shipper.ship_once()
            except StoreError as exc:
                click.echo(f"shadowtap: {exc}", err=True)
                raise SystemExit(1) from None
            click.echo(f"shipped {shipped} rows")
            return
        configure_logging(log_level, "text", secrets=secrets)
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        logging.getLogger("shadowtap.ship").info("shipping %s into %s", spool.path, safe_url(url))
        shipper.run(stop)
    finally:
        shipper.close()
        if exporter is not None:
            exporter.shutdown()
        spool.close()


def spool_redactor(config):
    """The redactor the capture path uses, applied again before anything leaves the machine."""
    from shadowtap.core.redaction import Redactor

    return Redactor.from_rules(config.redaction)
