"""The exceptions a store's database driver raises, for callers outside the store package that
must turn a database failure into a clear message without naming a driver."""

from __future__ import annotations

import sqlite3
import sys


def database_errors() -> tuple[type[Exception], ...]:
    """sqlite3's errors, and psycopg's once the PostgreSQL backend has loaded it (the live process
    never does, so it never pays for importing it)."""
    errors: list[type[Exception]] = [sqlite3.Error]
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None:
        errors.append(psycopg.Error)
    return tuple(errors)


def content_errors() -> tuple[type[Exception], ...]:
    """Errors about the rows being written rather than the store (a constraint, a value the
    database cannot take): writing the same rows again cannot help."""
    errors: list[type[Exception]] = [sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.ProgrammingError,
                                     sqlite3.DataError, TypeError, ValueError, OverflowError]
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None:
        errors += [psycopg.IntegrityError, psycopg.DataError, psycopg.ProgrammingError]
    return tuple(errors)
