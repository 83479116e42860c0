"""One part of a report's work in a forked child while the rest runs here: a second core for a
large report, which has read the store into memory and only computes from it afterwards.

A fork, not a spawned process or a pool: the child starts with everything already read (a
million exchanges are over a gigabyte of records, which no pipe would carry faster than the work
it would save) and sends back only its result, a few hundred figures. Only for a process that
owns its run, such as the `report` and `gate` commands: forking beside threads or an event loop
(the review app builds reports too) is unsafe, and there `beside` runs both parts here, one after
the other.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TypeVar

T = TypeVar("T")
U = TypeVar("U")


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def beside(job: Callable[[], T], meanwhile: Callable[[], U], *, fork: bool) -> tuple[T, U]:
    """(job(), meanwhile()): with `fork` (where the platform can), `job` runs in a forked child while
    `meanwhile` runs in this process. An exception in either is raised here."""
    if not (fork and can_fork()):
        return job(), meanwhile()
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_run_and_send, args=(job, sender), daemon=True)
    child.start()
    sender.close()
    try:
        mine = meanwhile()
        failed, theirs = receiver.recv()
    finally:
        receiver.close()
        child.join()
    if failed:
        raise theirs
    return theirs, mine


def _run_and_send(job: Callable[[], object], sender: Connection) -> None:
    # The child leaves with os._exit (multiprocessing's fork start): the records it shares with
    # its parent are not freed a second time, and nothing it inherited (the store's connection) is closed.
    try:
        result: tuple[bool, object] = (False, job())
    except BaseException as error:  # sent to the parent, which raises it
        result = (True, error)
    try:
        sender.send(result)
    except Exception as error:  # an exception that does not pickle: its text at least
        sender.send((True, RuntimeError(f"report part failed in a forked child: {result[1]!r} ({error})")))
    sender.close()
