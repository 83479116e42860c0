"""Shipping a replica's SQLite spool into the shared PostgreSQL store (`shadowtap ship`), and the
OpenTelemetry export that rides along. Runs beside `shadowtap serve`, never inside it."""
