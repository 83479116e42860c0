"""What a [store] target names (a SQLite file or a PostgreSQL URL) and how to print it safely.

Apart from backend.py so that config validation reads store URLs without importing a database
library: the live process loads its config long before (and whether or not) it opens the store.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def is_postgres_url(target: object) -> bool:
    """True for a postgresql:// (or postgres://) URL: the store it names is PostgreSQL, not a file."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def store_missing(target: str) -> bool:
    """True when `target` names a SQLite file that does not exist (a URL names a server: opening
    it says whether it answers)."""
    from pathlib import Path

    return target != ":memory:" and not is_postgres_url(target) and not Path(target).exists()


def safe_url(url: str) -> str:
    """The URL without its password and query, for logs, reports and error messages."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:***@{host}"
    return urlunsplit(parts._replace(netloc=netloc, query=""))
