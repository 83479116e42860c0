"""`shadowtap canary guard`: the guard loop as a process of its own (`shadowtap serve` starts one as
a child when an enabled candidate has a [candidates.canary] table)."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable

import click
import orjson

from shadowtap.core.cli_common import fail_usage, load_config_or_exit, open_store_or_exit
from shadowtap.core.errors import ConfigError, StoreError

log = logging.getLogger("shadowtap.canary")


@click.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Config file with the [canary] guards and the candidates' canary tables.")
@click.option("--store", "store_path", default=None,
              help="A SQLite file or a postgresql:// URL (default: the config's shared store, else [store] path).")
@click.option("--once", is_flag=True, help="Evaluate once, roll back what is red, print every guard as JSON, exit.")
@click.option("--exit-with-parent", is_flag=True, hidden=True,
              help="Stop when the process that started this one is gone (set by `shadowtap serve`).")
def guard(config_path: str, store_path: str | None, once: bool, exit_with_parent: bool) -> None:
    """Evaluate running canaries every [canary] guard_interval_s; roll back any with a red guard.

    Each guard (error and timeout rate, fallback rate by risk tier and task, contract-invalid rate,
    grounding and agreement drops against the primary on the same requests, and from feedback the
    trusted-completion and correction-burden deltas and the policy-violation rate) fires only from
    [canary] min_samples. A rollback sets the share to 0, records the guard and its window, and
    POSTs to [canary] webhook_url when one is set. Runs until SIGTERM or Ctrl-C.
    """
    from shadowtap.core.logs import configure_logging
    from shadowtap.core.secrets import configured_secrets
    from shadowtap.core.store import Store
    from shadowtap.evaluators.canary.loop import GuardLoop

    config = load_config_or_exit(config_path)
    if once:
        with open_store_or_exit(config, store_path) as store:
            loop = GuardLoop(config, store)
            rollbacks = {rollback.candidate: rollback.guard.name for rollback in loop.run_once()}
            click.echo(orjson.dumps({name: {"rolled_back_by": rollbacks.get(name),
                                            "guards": [result.as_dict() for result in results]}
                                     for name, results in loop.last_results.items()},
                                    option=orjson.OPT_INDENT_2).decode())
        return
    try:
        target = config.store.read_target(store_path)
    except ConfigError as exc:
        fail_usage(f"config error: {exc}")
    configure_logging(config.server.log_level, config.server.log_format, config.server.log_file,
                      configured_secrets(config))
    stop = threading.Event()
    for handled in (signal.SIGTERM, signal.SIGINT):
        signal.signal(handled, lambda *_: stop.set())
    parent = os.getppid()
    parent_alive = (lambda: os.getppid() == parent) if exit_with_parent else (lambda: True)
    opened = _open_when_possible(lambda: Store.open(target), stop, parent_alive, config.canary.guard_interval_s)
    if opened is None:
        return
    loop = GuardLoop(config, opened, reopen=lambda: Store.open(target))
    try:
        loop.run(stop, should_continue=parent_alive)
    finally:
        loop.store.close()  # type: ignore[attr-defined]


def _open_when_possible(open_store: Callable[[], object], stop: threading.Event, parent_alive: Callable[[], bool],
                        interval_s: float) -> object | None:
    """The store, once it opens (a shared store may be down when the proxy starts); None if told to stop first."""
    while not stop.is_set() and parent_alive():
        try:
            return open_store()
        except StoreError as exc:
            log.warning("canary guard cannot open the store yet, retrying: %s", exc)
        stop.wait(interval_s)
    return None
