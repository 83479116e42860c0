"""Run the proxy under uvicorn; SIGTERM/SIGINT finish in-flight requests, then drain capture."""

from __future__ import annotations

import gc
import importlib.util
import logging
import resource
import signal
import threading

import uvicorn

from shadowtap.core import readiness
from shadowtap.core.config import ShadowtapConfig
from shadowtap.core.logs import configure_logging
from shadowtap.core.secrets import configured_secrets
from shadowtap.proxy.app import create_app
from shadowtap.proxy.header_deadline import HeaderDeadlineProtocol
from shadowtap.proxy.listening import bind_listening_sockets, check_port_free
from shadowtap.proxy.multiworker import serve_workers

# No GIL switch interval is set here any more: it was 0.5 ms while the capture writer thread built
# and wrote rows in this process (a ready socket could wait 5 ms for the GIL). Capture now runs in
# the recorder process (capture/recorder.py), and the live process has no busy thread to yield to.
# Files a process needs besides client and primary connections: the store and its WAL, logs,
# pipes to the capture builder and the shadow worker, the listening socket.
_SPARE_FILES = 64
_PORT_OPTION = "--port or [server] port"

log = logging.getLogger("shadowtap.server")


def serve(config: ShadowtapConfig) -> None:
    """Raises ListenError, before anything has started, when the port cannot be bound."""
    configure_logging(config.server.log_level, config.server.log_format, config.server.log_file,
                      configured_secrets(config))
    ensure_file_limit(config)
    if config.server.workers > 1:
        check_port_free(config.server.host, config.server.port, option=_PORT_OPTION)
        start_startup_checks(config)
        serve_workers(config, uvicorn_options(config))
        return
    sockets = bind_listening_sockets(config.server.host, config.server.port, option=_PORT_OPTION)
    try:
        server = LiveServer(uvicorn.Config(create_app(config), **uvicorn_options(config)))
        start_startup_checks(config)
        # uvicorn re-raises the signal it handled after a graceful shutdown, restoring the handler
        # that was installed before it. A no-op handler there lets the process finish its own cleanup
        # (the shadow worker, its queues) and exit 0 instead of dying by SIGTERM.
        for handled in (signal.SIGTERM, signal.SIGINT):
            signal.signal(handled, lambda *_: None)
        server.run(sockets=sockets)
    finally:
        for sock in sockets:
            sock.close()
    if not server.started:
        # uvicorn has already logged why (a lifespan failure); make the exit code say so.
        raise SystemExit(1)


class LiveServer(uvicorn.Server):
    """uvicorn's server, with the objects made at start-up moved out of the garbage collector's
    sight once the app is ready (`gc.freeze`): the modules, the app and its pools live as long as
    the process, and every full collection would otherwise walk them again while a request waits."""

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            freeze_start_up_objects()


def freeze_start_up_objects() -> None:
    gc.collect()
    gc.freeze()


def start_startup_checks(config: ShadowtapConfig) -> threading.Thread:
    """`shadowtap check`'s environment and reachability checks, each problem logged as a warning.
    In a thread of their own, so that a primary slow to answer a connection never delays
    readiness. The model strings need litellm, which this process never loads: the shadow worker
    checks them. The judge and the candidates' hosts are not probed here (the judge serves `eval`;
    a candidate that cannot be reached says so in the worker's failure lines)."""
    def run() -> None:
        try:
            results = readiness.environment_checks(config)
            results += readiness.reachability_checks(config, judge=False, candidates=False)
            readiness.log_problems(results, log)
        except Exception:  # a check must never take the proxy down
            log.exception("the start-up checks failed to run")

    thread = threading.Thread(target=run, name="shadowtap-startup-checks", daemon=True)
    thread.start()
    return thread


def uvicorn_options(config: ShadowtapConfig) -> dict:
    """uvicorn.Config's options for one process or for each of [server] workers."""
    return dict(
        host=config.server.host,
        port=config.server.port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        # httptools (uvicorn[standard]) with a deadline and limits for request headers and a cap
        # on connections: see header_deadline.py.
        http=HeaderDeadlineProtocol.with_timeout(config.server.header_timeout_s,
                                                 max_header_bytes=config.server.max_header_bytes,
                                                 max_header_count=config.server.max_header_count,
                                                 max_connections=config.server.max_connections),
        lifespan="on",
        access_log=config.server.access_log,
        log_config=None,
        server_header=False,   # the client sees the primary's Server and Date headers, not ours
        date_header=False,
        timeout_graceful_shutdown=config.server.graceful_shutdown_s,
        timeout_keep_alive=30,
    )


def ensure_file_limit(config: ShadowtapConfig) -> None:
    """Raise the soft open-file limit to cover [server] max_connections, the primary pool and
    spares, when the hard limit allows; warn otherwise. Past the limit, accept() and connect()
    fail with EMFILE, and the cap on connections would not protect anyone."""
    needed = config.server.max_connections + config.primary.max_connections + _SPARE_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard == resource.RLIM_INFINITY or hard >= needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        return
    log.warning("the open-file limit (%d) is below [server] max_connections + [primary] max_connections + %d "
                "(%d); lower those keys or raise ulimit -n, or connections will fail with 'Too many open files'",
                hard, _SPARE_FILES, needed, extra={"open_file_limit": hard, "needed": needed})
