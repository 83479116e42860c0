"""Where requests go: a configured base URL split once into what a connection and a request line need."""

from __future__ import annotations

from dataclasses import dataclass

from yarl import URL

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Origin:
    """A configured base URL: the scheme, host and port to connect to, the `Host` header to send, and
    the base path that every request path extends."""

    display: str        # the URL as configured, for messages
    tls: bool
    host: str           # to connect to (an IPv6 address without brackets)
    port: int
    host_header: bytes  # as HTTP/1.1 wants it: the port only when it is not the scheme's default
    base_path: str      # without a trailing "/"

    @classmethod
    def parse(cls, base_url: str) -> Origin:
        url = URL(base_url)
        if url.scheme not in _DEFAULT_PORTS or not url.raw_host:
            raise ValueError(f"not an http(s) URL with a host: {base_url!r}")
        port = url.port or _DEFAULT_PORTS[url.scheme]
        host_header = url.host_port_subcomponent
        assert host_header is not None  # an absolute URL has one
        return cls(base_url, url.scheme == "https", url.raw_host, port, host_header.encode("ascii"),
                   url.raw_path.rstrip("/"))

    @property
    def key(self) -> tuple[bool, str, int]:
        """Which pooled connections can carry a request to this origin."""
        return self.tls, self.host, self.port


@dataclass(frozen=True, slots=True)
class RequestTarget:
    """One request's destination: its origin and the request line's path and query, as sent."""

    origin: Origin
    path_and_query: bytes

    @classmethod
    def of(cls, origin: Origin, path: str, query: bytes) -> RequestTarget:
        target = (origin.base_path + path).encode("ascii") or b"/"
        return cls(origin, target + b"?" + query if query else target)

    def __str__(self) -> str:
        scheme = "https" if self.origin.tls else "http"
        return f"{scheme}://{self.origin.host_header.decode('ascii')}{self.path_and_query.decode('latin-1')}"
