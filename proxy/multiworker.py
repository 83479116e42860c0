"""`shadowtap serve` with [server] workers > 1: uvicorn's supervisor runs N worker processes.

uvicorn starts each worker by importing an app factory by name, so the config travels as the
config file's path (and the command line's overrides) in the environment. Every worker has its own
capture writer; they share the SQLite store, whose writers wait for each other (busy_timeout,
BEGIN IMMEDIATE) instead of failing.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import uvicorn

from shadowtap.core.config import ShadowtapConfig, load_config
from shadowtap.core.errors import ConfigError
from shadowtap.core.logs import configure_logging
from shadowtap.core.secrets import configured_secrets

if TYPE_CHECKING:
    from shadowtap.proxy.app import ShadowtapApp

CONFIG_PATH_ENV = "SHADOWTAP_CONFIG_PATH"
SERVER_OVERRIDES_ENV = "SHADOWTAP_SERVER_OVERRIDES"
APP_FACTORY = "shadowtap.proxy.multiworker:create_app_in_worker"


def serve_workers(config: ShadowtapConfig, uvicorn_options: dict) -> None:
    """Run config.server.workers processes behind one listening socket, until SIGTERM/SIGINT.
    uvicorn's supervisor passes the signal to every worker; each drains its own capture queue."""
    if not Path(config.source).is_file():
        raise ConfigError("[server] workers > 1 needs the config as a file (--config), for the workers to load")
    os.environ[CONFIG_PATH_ENV] = str(Path(config.source).resolve())
    os.environ[SERVER_OVERRIDES_ENV] = orjson.dumps({
        "host": config.server.host, "port": config.server.port, "workers": config.server.workers}).decode()
    uvicorn.run(APP_FACTORY, factory=True, workers=config.server.workers, **uvicorn_options)


def create_app_in_worker() -> ShadowtapApp:
    """The app factory each worker process imports: the same config, logging and app as one process."""
    from shadowtap.proxy.live_imports import import_sqlite_utils_without_dataframes

    import_sqlite_utils_without_dataframes()  # each worker is a live process too: before the app imports the store
    from shadowtap.proxy.app import create_app

    overrides = orjson.loads(os.environ.get(SERVER_OVERRIDES_ENV, "{}"))
    config = load_config(os.environ[CONFIG_PATH_ENV]).with_overrides(**overrides)
    configure_logging(config.server.log_level, config.server.log_format, config.server.log_file,
                      configured_secrets(config))
    app = create_app(config)
    gc.collect()
    gc.freeze()  # as one process does once started (server.LiveServer): start-up objects live as long as it
    return app
