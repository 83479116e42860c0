"""Undo an HTTP Content-Encoding on a captured body, salvaging what a truncated stream holds.

Problems come back as a message, never an exception: a bad body must not stop the capture writer.
"""

from __future__ import annotations

import functools
import importlib
import zlib
from collections.abc import Callable
from types import ModuleType

# 32 + 15: let zlib recognise a gzip or a zlib header by itself.
_GZIP_OR_ZLIB_WBITS = 47
_RAW_DEFLATE_WBITS = -15


class _DecodeFailure(Exception):
    """A decoder gave up; `partial` holds whatever it decoded before that."""

    def __init__(self, message: str, partial: bytes = b"") -> None:
        super().__init__(message)
        self.partial = partial


def decode_body(content_encoding: str | None, body: bytes) -> tuple[bytes, str | None]:
    """Return (decoded body, error message or None); never raises.

    Encodings listed as "gzip, br" were applied in that order, so they are undone from
    the right. On failure the result is the decoded prefix when the failing decoder
    produced one (a stream cut mid-way), otherwise the bytes it could not decode.
    """
    data = bytes(body)
    for name in reversed(_encodings(content_encoding)):
        decoder = _DECODERS.get(name)
        if decoder is None:
            return data, f"unsupported content-encoding {name!r}"
        try:
            data = decoder(data)
        except _DecodeFailure as failure:
            return (failure.partial or data), f"{name}: {failure}"
        except Exception as exc:  # a decoder library's own error type; reported, not raised
            return data, f"{name}: {type(exc).__name__}: {exc}"
    return data, None


def _encodings(content_encoding: str | None) -> list[str]:
    if not content_encoding:
        return []
    names = (part.strip().lower() for part in content_encoding.split(","))
    return [name for name in names if name and name != "identity"]


def _inflate(data: bytes, wbits: int, label: str) -> bytes:
    """Decompress one or more concatenated zlib/gzip members, keeping partial output."""
    output: list[bytes] = []
    remaining = data
    while remaining:
        stream = zlib.decompressobj(wbits)
        try:
            output.append(stream.decompress(remaining))
            output.append(stream.flush())
        except zlib.error as exc:
            raise _DecodeFailure(f"corrupt {label} stream ({exc})", b"".join(output)) from exc
        if not stream.eof:
            raise _DecodeFailure(f"truncated {label} stream", b"".join(output))
        # Gzip allows several members back to back; zlib/raw deflate leaves only junk.
        remaining = stream.unused_data if label == "gzip" else b""
    return b"".join(output)


def _gunzip(data: bytes) -> bytes:
    return _inflate(data, _GZIP_OR_ZLIB_WBITS, "gzip")


def _deflate(data: bytes) -> bytes:
    # "deflate" should mean zlib-wrapped, but some servers send raw deflate, whose first
    # bytes can pass for a zlib header by chance.
    if _looks_like_zlib_header(data):
        try:
            return _inflate(data, zlib.MAX_WBITS, "deflate")
        except _DecodeFailure as failure:
            if failure.partial:
                raise
    return _inflate(data, _RAW_DEFLATE_WBITS, "deflate")


def _looks_like_zlib_header(data: bytes) -> bool:
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


def _unbrotli(data: bytes) -> bytes:
    module = _optional_module("brotli") or _optional_module("brotlicffi")
    if module is None:
        raise _DecodeFailure("brotli decoder not installed")
    return module.decompress(data)


def _unzstd(data: bytes) -> bytes:
    zstandard = _optional_module("zstandard")
    if zstandard is None:
        raise _DecodeFailure("zstandard decoder not installed")
    decompressor = zstandard.ZstdDecompressor()
    output: list[bytes] = []
    remaining = data
    while remaining:  # one decompressobj per frame, so a cut last frame is noticed
        frame = decompressor.decompressobj()
        try:
            output.append(frame.decompress(remaining))
        except zstandard.ZstdError as exc:
            raise _DecodeFailure(f"corrupt zstd stream ({exc})", b"".join(output)) from exc
        if not frame.eof:
            raise _DecodeFailure("truncated zstd stream", b"".join(output))
        remaining = frame.unused_data
    return b"".join(output)


@functools.cache
def _optional_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


_DECODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": _gunzip,
    "x-gzip": _gunzip,
    "deflate": _deflate,
    "br": _unbrotli,
    "zstd": _unzstd,
}


def decode_chunks(content_encoding: str | None, chunks: list[bytes]) -> tuple[list[bytes], str | None]:
    """Decode a body read in chunks, keeping one output per input chunk where the encoding allows
    (a single gzip or deflate layer), so stream timings stay attached to the right bytes.
    Anything else is decoded whole and returned as one chunk."""
    encodings = _encodings(content_encoding)
    if len(encodings) != 1 or encodings[0] not in ("gzip", "x-gzip", "deflate"):
        body, error = decode_body(content_encoding, b"".join(chunks))
        return [body], error
    wbits = _GZIP_OR_ZLIB_WBITS
    if encodings[0] == "deflate" and chunks and not _looks_like_zlib_header(chunks[0]):
        wbits = _RAW_DEFLATE_WBITS
    decoder = zlib.decompressobj(wbits)
    decoded: list[bytes] = []
    try:
        for chunk in chunks:
            decoded.append(decoder.decompress(chunk))
        decoded[-1:] = [decoded[-1] + decoder.flush()] if decoded else []
    except zlib.error as exc:
        return decoded, f"{encodings[0]}: {exc}"
    if not decoder.eof:
        return decoded, f"{encodings[0]}: stream ended before the end of the compressed data"
    return decoded, None
