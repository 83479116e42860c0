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
@click.option("--status", "show_status", is_flag=True,
              help="Show how far the spool has been shipped, what is left, and the rows PostgreSQL refused; "
                   "ship nothing.")
@click.option("--json", "as_json", is_flag=True, help="With --status: print it as JSON.")
@click.option("--batch-size", default=5000, show_default=True, type=click.IntRange(1, 100_000),
              help="Rows per PostgreSQL transaction.")
@click.option("--interval", "interval_s", default=1.0, show_default=True, type=click.FloatRange(0.01, 3600),
              help="Seconds between looks at the spool when it has nothing new.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def ship(config_path, store_path, once, show_status, as_json, batch_size, interval_s, log_level) -> None:
    """Copy new exchanges, shadow rows, feedback and scores from this replica's SQLite spool into the
    shared PostgreSQL store, in batches, idempotently, resuming where it stopped.

    Run one beside each `shadowtap serve`. The live process never waits for it: while PostgreSQL
    is unreachable the shipper retries with backoff and the spool keeps every row; once it is
    back, every row arrives exactly once. A row PostgreSQL refuses is set aside (logged, counted,
    listed by --status) and the rows after it keep shipping. With [export.otlp] endpoint set, it
    also sends each shipped exchange and shadow call as an OpenTelemetry span, and each score in
    the shared store (whoever wrote it) as an event, one shipper at a time. With [store]
    spool_keep_hours, it deletes rows it shipped from the spool once they are that old. Stops
    cleanly on SIGTERM or Ctrl-C.

    Exit codes: 0 stopped cleanly (or --once shipped everything, or --status answered); 1 --once
    or --status could not reach the shared store; 2 usage or config error.
    """
    from shadowtap.core.errors import ConfigError, StoreError
    from shadowtap.core.logs import configure_logging
    from shadowtap.core.secrets import configured_secrets
    from shadowtap.core.ship.shipper import Shipper
    from shadowtap.core.store import CaptureStore
    from shadowtap.core.store.backend import safe_url

    if as_json and not show_status:
        fail_usage("--json goes with --status")
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
    if config.export.otlp.endpoint and not show_status:
        from shadowtap.core.ship.otlp import OtlpExporter, server_address_of

        exporter = OtlpExporter(config.export.otlp, spool_redactor(config),
                                server_address=server_address_of(config.primary.base_url))
    shipper = Shipper(spool, lambda: CaptureStore.open(url), batch_size=batch_size, interval_s=interval_s,
                      retention_days=config.store.retention_days, spool_keep_hours=config.store.spool_keep_hours,
                      on_shipped=exporter.export_batch if exporter else None,
                      export_scores=exporter.export_batch if exporter else None)
    try:
        if show_status:
            click.echo(format_status(_or_exit_1(shipper.status), as_json=as_json))
            return
        configure_logging(log_level, "text", secrets=secrets)
        if once:
            shipped = _or_exit_1(shipper.ship_once)
            rejected = f", {shipper.counters.rejected} set aside (see --status)" if shipper.counters.rejected else ""
            click.echo(f"shipped {shipped} rows{rejected}")
            return
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


def format_status(status: dict, *, as_json: bool = False) -> str:
    if as_json:
        import orjson

        return orjson.dumps(status, default=str, option=orjson.OPT_INDENT_2).decode()
    lines = [f"spool {status['spool']} (store_id {status['store_id']})"]
    for table, state in status["tables"].items():
        lines.append(f"  {table:<16} shipped to rowid {state['position']:>10}   {state['backlog']:>8} to ship")
    lines.append(f"rows PostgreSQL refused, set aside in _shadowtap_ship_rejects: {status['rejected']}")
    for reject in status["latest_rejects"]:
        lines.append(f"  {reject['rejected_at']:%Y-%m-%d %H:%M:%S} {reject['table_name']} {reject['row_id']}: "
                     f"{reject['error']}: {reject['reason']}")
    return "\n".join(lines)


def spool_redactor(config):
    """The redactor the capture path uses, applied again before anything leaves the machine."""
    from shadowtap.core.redaction import Redactor

    return Redactor.from_rules(config.redaction)


def _or_exit_1(step):
    """`step()`, or exit 1 saying why when the shared store refuses it."""
    from shadowtap.core.errors import StoreError

    try:
        return step()
    except StoreError as exc:
        click.echo(f"shadowtap: {exc}", err=True)
        raise SystemExit(1) from None
