"""Helpers shared by the CLI's command modules: config loading and usage failures (exit 2)."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from proxy.config import ShadowtapConfig, load_config
from proxy.errors import ConfigError


def fail_usage(message: str) -> NoReturn:
    click.echo(f"shadowtap: {message}", err=True)
    sys.exit(2)


def load_config_or_exit(config_path: str | None) -> ShadowtapConfig:
    if config_path is None:
        return ShadowtapConfig()
    try:
        return load_config(config_path)
    except ConfigError as exc:
        fail_usage(f"config error: {exc}")
