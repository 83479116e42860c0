"""Helpers shared by the CLI's command modules: config and store opening, usage failures (exit 2)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

import click

from shadowtap.core.config import ShadowtapConfig, load_config
from shadowtap.core.errors import ConfigError, StoreError
from shadowtap.core.logs import guard_library_logs
from shadowtap.core.secrets import configured_secrets

if TYPE_CHECKING:
    from shadowtap.core.store import Store


def fail_usage(message: str) -> NoReturn:
    click.echo(f"shadowtap: {message}", err=True)
    sys.exit(2)


def load_config_or_exit(config_path: str | None) -> ShadowtapConfig:
    """The config (defaults without a path); also keeps its secrets out of any library's log lines."""
    try:
        config = ShadowtapConfig() if config_path is None else load_config(config_path)
    except ConfigError as exc:
        fail_usage(f"config error: {exc}")
    guard_library_logs(configured_secrets(config))
    return config


def open_store_or_exit(config: ShadowtapConfig, store_path: str | None = None) -> Store:
    """The store an offline command reads: --store, else the shared store ([store] url or url_env),
    else the SQLite file at [store] path. A missing file or an unusable store exits 2 naming it."""
    from shadowtap.core.store import Store
    from shadowtap.core.store.backend import safe_url, store_missing

    try:
        target = config.store.read_target(store_path)
    except ConfigError as exc:
        fail_usage(f"config error: {exc}")
    if store_missing(target):
        fail_usage(f"no capture store at {target!r}: pass --store, or --config with a [store] path or url")
    try:
        return Store.open(target)
    except StoreError as exc:
        fail_usage(f"{exc} ({safe_url(target)})" if "://" in target else str(exc))
