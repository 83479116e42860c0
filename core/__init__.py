"""shadowtap's core, what every stage stands on: config, the store, errors, redaction, time and
terminal helpers, and the CLI root. It imports no stage (tests/project/test_import_boundaries.py)."""

__version__ = "0.2.0"
