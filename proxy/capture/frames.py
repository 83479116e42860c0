"""How a raw exchange crosses from the live process to the recorder: framed bytes on a socket.

An exchange frame is: 4-byte header length, 4-byte payload length (big-endian), the header (a
pickle of the exchange's fields, with the lengths of the request body and of each response chunk
in place of the bytes), then the payload: the request body and the response chunks as they are,
back to back. The live process hands the parts to one `sendmsg`, so no body is copied into a
pickle or joined in Python. A header length of 0xFFFFFFFF is the stop frame.

The recorder answers on the same socket with messages of its own: 4-byte length, one kind byte
(`s` a status snapshot as JSON, `l` a log record as a pickled dict), the payload.
"""

from __future__ import annotations

import dataclasses
import operator
import pickle
import struct

from shadowtap.proxy.exchange import RawExchange

_LENGTHS = struct.Struct(">II")
_STOP_LENGTH = 0xFFFFFFFF
STOP_FRAME = _LENGTHS.pack(_STOP_LENGTH, 0)
# Above this many response chunks they are joined into one buffer: sendmsg takes at most
# IOV_MAX (1,024 on Linux) buffers per call.
_MAX_SEPARATE_CHUNKS = 256

_MESSAGE_HEAD = struct.Struct(">Ic")
STATUS = b"s"
LOG_RECORD = b"l"

# The fields a header carries, in order (every field of RawExchange, whoever adds one); the bytes
# of the body and of the chunks travel apart.
_FIELDS = tuple(field.name for field in dataclasses.fields(RawExchange)
                if field.name not in ("request_body", "response_chunks"))
_field_values = operator.attrgetter(*_FIELDS)


def exchange_size(exchange: RawExchange) -> int:
    """The bytes of body an exchange frame carries (its header is small beside them)."""
    return len(exchange.request_body) + sum(map(len, exchange.response_chunks))


def encode_exchange(exchange: RawExchange) -> list[bytes | bytearray | memoryview]:
    """The frame's parts, to be written in order (empty ones left out). The bodies are the
    exchange's own buffers."""
    chunks = exchange.response_chunks
    if len(chunks) > _MAX_SEPARATE_CHUNKS:
        chunks = [b"".join(chunks)]
        lengths = [len(chunk) for chunk in exchange.response_chunks]
    else:
        lengths = [len(chunk) for chunk in chunks]
    fields = _field_values(exchange)
    header = pickle.dumps((fields, len(exchange.request_body), lengths), protocol=pickle.HIGHEST_PROTOCOL)
    payload_length = len(exchange.request_body) + sum(lengths)
    parts = [_LENGTHS.pack(len(header), payload_length) + header, exchange.request_body, *chunks]
    return [part for part in parts if len(part)]


def decode_exchange(header: bytes | memoryview, payload: bytes | memoryview) -> RawExchange:
    fields, body_length, lengths = pickle.loads(header)
    exchange = object.__new__(RawExchange)  # every field is set below, from the frame
    for name, value in zip(_FIELDS, fields, strict=True):
        setattr(exchange, name, value)
    exchange.request_body = bytes(payload[:body_length])
    chunks, offset = [], body_length
    for length in lengths:
        chunks.append(bytes(payload[offset:offset + length]))
        offset += length
    exchange.response_chunks = chunks
    return exchange


class ExchangeFrameReader:
    """Cuts a byte stream into exchanges; `None` in the output is the stop frame."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes | memoryview) -> list[RawExchange | None]:
        self._buffer += data
        items: list[RawExchange | None] = []
        offset = 0
        with memoryview(self._buffer) as view:
            while len(view) - offset >= _LENGTHS.size:
                header_length, payload_length = _LENGTHS.unpack_from(view, offset)
                if header_length == _STOP_LENGTH:
                    offset += _LENGTHS.size
                    items.append(None)
                    continue
                end = offset + _LENGTHS.size + header_length + payload_length
                if len(view) < end:
                    break
                header_start = offset + _LENGTHS.size
                payload_start = header_start + header_length
                items.append(decode_exchange(view[header_start:payload_start], view[payload_start:end]))
                offset = end
        del self._buffer[:offset]
        return items


def encode_message(kind: bytes, payload: bytes) -> bytes:
    return _MESSAGE_HEAD.pack(len(payload), kind) + payload


class MessageReader:
    """Cuts the recorder's answers into (kind, payload) pairs."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        self._buffer += data
        messages, offset = [], 0
        while len(self._buffer) - offset >= _MESSAGE_HEAD.size:
            length, kind = _MESSAGE_HEAD.unpack_from(self._buffer, offset)
            end = offset + _MESSAGE_HEAD.size + length
            if len(self._buffer) < end:
                break
            messages.append((kind, bytes(self._buffer[offset + _MESSAGE_HEAD.size:end])))
            offset = end
        del self._buffer[:offset]
        return messages
