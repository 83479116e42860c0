"""The listening sockets of `shadowtap serve` and `shadowtap simulator`, bound before anything starts.

Left to uvicorn, a port in use shows up after start-up (the capture builder and the shadow worker
already running) as a logged traceback and exit 3. Bound here first, it is one ListenError
sentence, which the command turns into exit 2, and nothing has started that must be stopped.
"""

from __future__ import annotations

import errno
import socket

from shadowtap.core.errors import ListenError

BACKLOG = 2048  # uvicorn's default


def bind_listening_sockets(host: str, port: int, *, option: str = "--port") -> list[socket.socket]:
    """Listening sockets for every address `host` names (one for "127.0.0.1", two for a name with
    an IPv4 and an IPv6 address), bound as uvicorn would bind them. Raises ListenError."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise ListenError(f"cannot listen on {host!r}: that host name does not resolve ({exc})") from None
    sockets: list[socket.socket] = []
    seen = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise ListenError(_reason(host, port, exc, option)) from None
            sock.listen(BACKLOG)
            sock.set_inheritable(True)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def check_port_free(host: str, port: int, *, option: str = "--port") -> None:
    """Bind and release at once: for servers that bind for themselves (uvicorn's multi-worker
    supervisor). Another process can still take the port in between; then uvicorn reports it."""
    for sock in bind_listening_sockets(host, port, option=option):
        sock.close()


def _reason(host: str, port: int, exc: OSError, option: str) -> str:
    where = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    if exc.errno == errno.EADDRINUSE:
        return (f"cannot listen on {where}: the port is already in use by another process; stop it, or "
                f"choose another port with {option}")
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: {host} is not an address of this machine"
    if exc.errno == errno.EACCES:
        return f"cannot listen on {where}: permission denied (ports below 1024 need privileges); choose another " \
               f"port with {option}"
    return f"cannot listen on {where}: {exc.strerror or exc}"
