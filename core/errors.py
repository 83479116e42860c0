"""The exceptions shadowtap raises on purpose.

    ShadowtapError
    ├── ConfigError          bad config file, key or value   -> CLI exit 2
    │   ├── TargetError          a replay --target cannot be used
    │   ├── SelectionError       a replay selection option cannot be understood
    │   └── CriterionError       a replay --pass value cannot be understood or built
    ├── StoreError           capture store cannot be opened or migrated
    ├── ListenError          the address to serve on cannot be bound (port in use) -> CLI exit 2
    ├── FeedbackError        a feedback item cannot be stored
    │   ├── FeedbackInvalid      a field is missing or bad              -> HTTP 422
    │   ├── UnknownExchange      no captured exchange has that id       -> HTTP 404
    │   └── FeedbackConflict     a feedback id reused with other content -> HTTP 409
    └── UpstreamError        the primary could not be reached or answered badly
        ├── UpstreamUnreachable  connect failure              -> HTTP 502
        ├── UpstreamTimeout      no answer in time            -> HTTP 504
        └── ProxyOverloaded      this machine is out of files -> HTTP 503 (not the primary's fault)

They become exit codes only in the CLI and HTTP statuses only in the app.
"""


class ShadowtapError(Exception):
    """Base class for every error shadowtap raises deliberately."""


class ConfigError(ShadowtapError):
    """The config file, a key or a value is not acceptable."""


class TargetError(ConfigError):
    """A replay target cannot be used: unknown, refused, or badly written."""


class SelectionError(ConfigError):
    """A replay selection option has a value that cannot be understood."""


class CriterionError(ConfigError):
    """A replay --pass value cannot be understood or its evaluator cannot be built."""


class StoreError(ShadowtapError):
    """The capture store cannot be opened, migrated or read."""


class ListenError(ShadowtapError):
    """The host and port a server should listen on cannot be bound: in use, or not this machine's."""


class FeedbackError(ShadowtapError):
    """A feedback item cannot be stored: `reason` says why, `index` is its position in the batch,
    `field` the culprit; the message is "item <index>: <reason>"."""

    def __init__(self, reason: str, *, index: int = 0, field: str | None = None) -> None:
        super().__init__(f"item {index}: {reason}")
        self.reason = reason
        self.index = index
        self.field = field


class FeedbackInvalid(FeedbackError):
    """A feedback field is missing, unknown, of the wrong type or out of range."""


class UnknownExchange(FeedbackError):
    """Feedback names an exchange id that shadowtap never captured; `exchange_ids` lists them."""

    def __init__(self, reason: str, *, index: int = 0, field: str | None = None,
                 exchange_ids: list[str] | None = None) -> None:
        super().__init__(reason, index=index, field=field)
        self.exchange_ids = exchange_ids or []


class FeedbackConflict(FeedbackError):
    """A feedback id was used before for different content."""


class UpstreamError(ShadowtapError):
    """The primary upstream failed before a response could be relayed."""


class ProxyOverloaded(UpstreamError):
    """The proxy ran out of a local resource (open files, socket buffers, memory) before it could
    reach the primary: answered 503 `proxy_overloaded`, never recorded as the primary failing."""


class UpstreamUnreachable(UpstreamError):
    """Connecting to the primary failed (refused, DNS, TLS)."""


class UpstreamTimeout(UpstreamError):
    """The primary did not answer within the configured deadline."""
