"""The exceptions shadowtap raises on purpose.

    ShadowtapError
    ├── ConfigError          bad config file, key or value   -> CLI exit 2
    ├── StoreError           capture store cannot be opened or migrated
    └── UpstreamError        the primary could not be reached or answered badly
        ├── UpstreamUnreachable  connect failure              -> HTTP 502
        └── UpstreamTimeout      no answer in time            -> HTTP 504

They become exit codes only in the CLI and HTTP statuses only in the app.
"""


class ShadowtapError(Exception):
    """Base class for every error shadowtap raises deliberately."""


class ConfigError(ShadowtapError):
    """The config file, a key or a value is not acceptable."""


class StoreError(ShadowtapError):
    """The capture store cannot be opened, migrated or read."""


class UpstreamError(ShadowtapError):
    """The primary upstream failed before a response could be relayed."""


class UpstreamUnreachable(UpstreamError):
    """Connecting to the primary failed (refused, DNS, TLS)."""


class UpstreamTimeout(UpstreamError):
    """The primary did not answer within the configured deadline."""
