"""Helpers shared by the CLI's command modules: config loading and usage failures (exit 2)."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from shadowtap.core.config import ShadowtapConfig, load_config
from shadowtap.core.errors import ConfigError
from shadowtap.core.logs import guard_library_logs
from shadowtap.core.secrets import configured_secrets


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
