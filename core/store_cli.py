"""`shadowtap store`: migrate, prune and copy a store, SQLite or PostgreSQL."""

from __future__ import annotations

import click

from shadowtap.core.cli_common import fail_usage, load_config_or_exit


def _target(config_path: str | None, store: str | None, *, shared: bool) -> str:
    """--store, else the shared store ([store] url or url_env) when `shared` and set, else [store] path."""
    from shadowtap.core.errors import ConfigError

    if store:
        return store
    config = load_config_or_exit(config_path)
    if shared:
        try:
            url = config.store.shared_url()
        except ConfigError as exc:
            fail_usage(f"config error: {exc}")
        if url:
            return url
    return config.store.path


def _open(target: str):
    from shadowtap.core.errors import StoreError
    from shadowtap.core.store import CaptureStore

    try:
        return CaptureStore.open(target)
    except StoreError as exc:
        fail_usage(str(exc))


_CONFIG = click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
                       help="Config file whose [store] url (or url_env), else [store] path, to use.")
_STORE = click.option("--store", "store", default=None,
                      help="A SQLite file or a postgresql:// URL (default: the shared store if configured, "
                           "else [store] path).")


@click.group("store")
def store_group() -> None:
    """Look after a store: bring it to the current schema, delete old exchanges, copy it to PostgreSQL."""


@store_group.command("migrate")
@_CONFIG
@_STORE
def migrate(config_path, store) -> None:
    """Apply every pending schema migration (either backend); a current store is left unchanged."""
    from shadowtap.core.store.backend import safe_url

    target = _target(config_path, store, shared=True)
    opened = _open(target)  # opening migrates
    opened.close()
    click.echo(f"{safe_url(target) if '://' in target else target}: schema is current")


@store_group.command("prune")
@_CONFIG
@_STORE
@click.option("--before", required=True, help="Delete exchanges older than this age (30d, 12h) or ISO time.")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 100_000),
              help="Exchanges deleted per transaction, so writers never wait long.")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
def prune(config_path, store, before, batch_size, dry_run) -> None:
    """Delete exchanges that started before --before, with their shadow rows, scores and feedback,
    in small transactions that do not block writers."""
    from shadowtap.core.captures_cli import time_option
    from shadowtap.core.store.retention import count_before, prune_before

    cutoff = time_option(before, "--before")
    assert cutoff is not None
    opened = _open(_target(config_path, store, shared=True))
    try:
        if dry_run:
            click.echo(f"would delete {count_before(opened, cutoff)} exchanges that started before {cutoff}")
            return
        result = prune_before(opened, cutoff, batch_size=batch_size)
    finally:
        opened.close()
    click.echo(f"deleted {result.exchanges} exchanges started before {cutoff}, and {result.dependents} "
               "shadow, score and feedback rows of theirs")


@store_group.command("copy")
@_CONFIG
@click.option("--from", "source", default=None, type=click.Path(dir_okay=False, exists=True),
              help="The SQLite store to copy (default: [store] path).")
@click.option("--to", "destination", default=None,
              help="postgresql:// URL (default: [store] url or url_env). Prefer url_env for a password.")
@click.option("--batch-size", default=5000, show_default=True, type=click.IntRange(1, 100_000))
def copy(config_path, source, destination, batch_size) -> None:
    """Copy a SQLite store (exchanges, shadows, scores, feedback, replays) into PostgreSQL.

    Idempotent and resumable: run it again after an interruption and it carries on; rows already
    there are kept (or replaced by their newer version, for shadows, scores and replays)."""
    from shadowtap.core.errors import StoreError
    from shadowtap.core.ship.shipper import Shipper
    from shadowtap.core.store import CaptureStore
    from shadowtap.core.store.backend import is_postgres_url
    from shadowtap.core.store.shipping import COPIED_TABLES

    url = destination or _target(config_path, None, shared=True)
    if not is_postgres_url(url):
        fail_usage("--to: expected a postgresql:// URL (or [store] url / url_env in --config)")
    spool = _open(source or _target(config_path, None, shared=False))
    shipper = Shipper(spool, lambda: CaptureStore.open(url), tables=COPIED_TABLES, batch_size=batch_size)
    try:
        shipped = shipper.ship_once()
    except StoreError as exc:
        click.echo(f"shadowtap: {exc}", err=True)
        raise SystemExit(1) from None
    finally:
        shipper.close()
        spool.close()
    click.echo(f"copied {shipped} rows: " + ", ".join(f"{table} {n}" for table, n in shipper.counters.rows.items()))
