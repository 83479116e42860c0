"""Which request paths may reach the primary, and the part of them that extends its base path.

A request chooses only a path below `/v1/`, never the host: the upstream URL is built from the
configured scheme, host and port, and the configured base path extended by the checked suffix.
The check is on the raw bytes the client sent, since the decoded path hides what an encoded
`/` or `@` would do once appended to a URL.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote_to_bytes

from shadowtap.proxy.path_memo import remembered_for_short_paths

_PREFIX = b"/v1"
# Printable ASCII but for `\` (some servers read it as `/`) and `#` (a fragment never belongs in a
# request line). Spaces and controls are already refused by the HTTP parser.
_ALLOWED_BYTES = frozenset(range(0x21, 0x7F)) - {ord("\\"), ord("#")}
_HEX = frozenset(b"0123456789abcdefABCDEF")
_DOT_SEGMENTS = ("", ".", "..")


class UnsafePath(ValueError):
    """A path that could leave the configured base path or be read differently upstream."""


# A few paths carry nearly every request, and checking one costs about 2.5 µs: the answers for
# short paths are remembered (a refusal is an exception, never remembered).
@remembered_for_short_paths()
def upstream_suffix(raw_path: bytes) -> str:
    """The part of `raw_path` after `/v1`, checked segment by segment: "" or "/…".

    Refused: encoded `/` or `\\` anywhere; `.` and `..` segments, plain or encoded; empty segments
    but a trailing one; percent signs not followed by two hex digits; bytes outside printable
    ASCII; and encoded characters that Unicode compatibility folds into any of those.
    """
    if raw_path == _PREFIX:
        return ""
    if not raw_path.startswith(_PREFIX + b"/"):
        raise UnsafePath("the path must start with /v1/ as sent, without encoded characters")
    suffix = raw_path[len(_PREFIX):]
    segments = suffix[1:].split(b"/")
    for index, segment in enumerate(segments):
        if not segment and index == len(segments) - 1 and index > 0:
            continue  # "/v1/models/" is one path; its trailing slash is the client's business
        _check_segment(segment)
    return suffix.decode("ascii")


def _check_segment(segment: bytes) -> None:
    if any(byte not in _ALLOWED_BYTES for byte in segment):
        raise UnsafePath("the path holds a byte outside printable ASCII, a backslash or a '#'")
    if b"%" not in segment:  # the common case: plain ASCII, already in its folded form
        if segment in (b"", b".", b".."):
            raise UnsafePath("the path holds an empty, '.' or '..' segment")
        return
    _check_escapes(segment)
    try:
        decoded = unquote_to_bytes(segment).decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafePath("the path holds percent-escapes that are not UTF-8") from None
    folded = unicodedata.normalize("NFKC", decoded)
    for form in (decoded, folded):
        if "/" in form or "\\" in form:
            raise UnsafePath("the path holds an encoded '/' or '\\'")
        if form in _DOT_SEGMENTS:
            raise UnsafePath("the path holds an empty, '.' or '..' segment")
        if any(ord(character) < 0x20 or ord(character) == 0x7F for character in form):
            raise UnsafePath("the path holds an encoded control character")


def _check_escapes(segment: bytes) -> None:
    position = segment.find(b"%")
    while position != -1:
        escape = segment[position + 1:position + 3]
        if len(escape) != 2 or not all(byte in _HEX for byte in escape):
            raise UnsafePath("the path holds a '%' that is not followed by two hex digits")
        position = segment.find(b"%", position + 3)
