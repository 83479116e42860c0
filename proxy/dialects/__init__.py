"""One module per API dialect, and the registry that picks one for a request path.

Adding a dialect is a new module with a `Dialect` subclass and one line in DIALECTS (before any
dialect whose paths would also match it). Nothing outside this package names an endpoint.
"""

from __future__ import annotations

from shadowtap.proxy.dialects.base import AssembledResponse, Dialect, RequestPart, ShadowRequest
from shadowtap.proxy.dialects.chat_completions import ChatCompletions
from shadowtap.proxy.dialects.completions import Completions
from shadowtap.proxy.dialects.embeddings import Embeddings
from shadowtap.proxy.dialects.messages import Messages, MessagesCountTokens
from shadowtap.proxy.dialects.other import Other
from shadowtap.proxy.dialects.responses import Responses
from shadowtap.proxy.path_memo import remembered_for_short_paths

# Order matters where paths overlap: /chat/completions also ends with /completions.
DIALECTS: tuple[Dialect, ...] = (ChatCompletions(), Completions(), Embeddings(), Responses(), Messages(),
                                 MessagesCountTokens())
OTHER: Dialect = Other()
# Paths below /v1 that only Anthropic serves (message batches besides the two dialects above) go
# to `anthropic_base_url` too.
_ANTHROPIC_PREFIX = "/messages/"
_BY_NAME = {dialect.name: dialect for dialect in (*DIALECTS, OTHER)}


# The live path asks up to four times per request (routing, forwarding, metrics, capture), and a
# few paths carry nearly every request: /v1/messages, fifth in line, cost about 2.4 µs a time.
@remembered_for_short_paths()
def dialect_for_path(path: str) -> Dialect:
    """The dialect whose paths include `path`, or OTHER (forwarded, not understood)."""
    for dialect in DIALECTS:
        if dialect.owns(path):
            return dialect
    return OTHER


def dialect_named(name: str | None) -> Dialect:
    """The dialect a stored `endpoint` column names; OTHER for an unknown or missing name."""
    return _BY_NAME.get(name or "", OTHER)


def upstream_for_path(path_after_v1: str) -> str:
    """Which primary a path below /v1 goes to: "anthropic" or "openai" (see Dialect.upstream)."""
    dialect = dialect_for_path("/v1" + path_after_v1)
    if dialect is OTHER and path_after_v1.startswith(_ANTHROPIC_PREFIX):
        return "anthropic"
    return dialect.upstream


def endpoint_for_path(path: str) -> str:
    """The name stored in the `endpoint` column and used as a metrics label."""
    return dialect_for_path(path).name


__all__ = ["DIALECTS", "OTHER", "AssembledResponse", "Dialect", "RequestPart", "ShadowRequest", "dialect_for_path",
           "dialect_named", "endpoint_for_path", "upstream_for_path"]
