"""decode_body: undoing Content-Encoding on captured bodies, including cut streams."""

import gzip
import types
import zlib

import pytest
import zstandard

from shadowtap.proxy.capture import decoding
from shadowtap.proxy.capture.decoding import decode_body

EVENTS = [
    b'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n',
    b'data: {"choices":[{"index":0,"delta":{"content":"lo \xc3\xa9t\xc3\xa9"}}]}\n\n',
    b'data: {"choices":[{"index":0,"delta":{"content":"!"}}]}\n\n',
    b"data: [DONE]\n\n",
]
PLAIN = b"".join(EVENTS)


def gzip_flushed_per_event(events: list[bytes]) -> list[bytes]:
    """The network reads of a gzip-encoded SSE response whose server flushes after each event."""
    compressor = zlib.compressobj(wbits=31)
    reads = [compressor.compress(event) + compressor.flush(zlib.Z_SYNC_FLUSH) for event in events]
    reads[-1] += compressor.flush()
    return reads


@pytest.mark.parametrize("encoding", [None, "", "identity", " Identity "])
def test_body_is_unchanged_when_there_is_no_encoding(encoding):
    assert decode_body(encoding, PLAIN) == (PLAIN, None)


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "GZIP", " gzip "])
def test_gzip_body_is_decoded_when_encoding_names_gzip(encoding):
    assert decode_body(encoding, gzip.compress(PLAIN)) == (PLAIN, None)


def test_deflate_body_is_decoded_when_zlib_wrapped():
    assert decode_body("deflate", zlib.compress(PLAIN)) == (PLAIN, None)


def test_deflate_body_is_decoded_when_raw_deflate():
    compressor = zlib.compressobj(wbits=-15)
    raw = compressor.compress(PLAIN) + compressor.flush()
    assert decode_body("deflate", raw) == (PLAIN, None)


def test_raw_deflate_is_decoded_when_its_first_bytes_pass_for_a_zlib_header():
    # A stored block of b"A" whose padding bits make b"\x78\x01" (a valid zlib header),
    # then an empty final block.
    raw = b"\x78\x01\x00\xfe\xffA\x03\x00"
    assert decode_body("deflate", raw) == (b"A", None)


def test_encodings_are_undone_in_reverse_order_when_several_are_listed():
    # "deflate, gzip": deflate was applied first, so gzip must be undone first.
    body = gzip.compress(zlib.compress(PLAIN))
    assert decode_body("deflate, gzip", body) == (PLAIN, None)


def test_gzip_stream_decodes_fully_when_flushed_per_event():
    assert decode_body("gzip", b"".join(gzip_flushed_per_event(EVENTS))) == (PLAIN, None)


def test_truncated_gzip_stream_yields_decoded_prefix_and_error_when_cut_mid_way():
    reads = gzip_flushed_per_event(EVENTS)
    cut = b"".join(reads[:2]) + reads[2][: len(reads[2]) // 2]

    decoded, error = decode_body("gzip", cut)

    assert decoded.startswith(EVENTS[0] + EVENTS[1])
    assert PLAIN.startswith(decoded)
    assert error is not None and "truncated" in error


def test_every_gzip_member_is_decoded_when_members_are_concatenated():
    body = gzip.compress(EVENTS[0]) + gzip.compress(EVENTS[1])
    assert decode_body("gzip", body) == (EVENTS[0] + EVENTS[1], None)


def test_input_is_returned_with_error_when_gzip_body_is_not_gzip():
    decoded, error = decode_body("gzip", b'{"not": "compressed"}')
    assert decoded == b'{"not": "compressed"}'
    assert error is not None and error.startswith("gzip:")


def test_zstd_body_is_decoded_when_encoding_is_zstd():
    body = zstandard.ZstdCompressor().compress(PLAIN)
    assert decode_body("zstd", body) == (PLAIN, None)


def test_truncated_zstd_stream_yields_decoded_prefix_when_cut_after_a_flush():
    compressor = zstandard.ZstdCompressor().compressobj()
    first = compressor.compress(EVENTS[0]) + compressor.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    rest = compressor.compress(EVENTS[1]) + compressor.flush()

    decoded, error = decode_body("zstd", first + rest[: len(rest) // 2])

    assert decoded == EVENTS[0]
    assert error is not None and "truncated" in error


def test_body_is_returned_with_error_when_no_brotli_decoder_is_installed(monkeypatch):
    monkeypatch.setattr(decoding, "_optional_module", lambda name: None)
    assert decode_body("br", b"\x8b\x03\x80abc\x03") == (b"\x8b\x03\x80abc\x03", "br: brotli decoder not installed")


def test_brotlicffi_is_used_when_brotli_is_not_installed(monkeypatch):
    fake_brotlicffi = types.SimpleNamespace(decompress=lambda data: data.upper())
    modules = {"brotlicffi": fake_brotlicffi}
    monkeypatch.setattr(decoding, "_optional_module", modules.get)
    assert decode_body("br", b"abc") == (b"ABC", None)


def test_brotli_body_is_decoded_when_brotli_is_installed():
    brotli = pytest.importorskip("brotli")
    assert decode_body("br", brotli.compress(PLAIN)) == (PLAIN, None)


def test_body_is_returned_with_error_when_encoding_is_unknown():
    assert decode_body("compress", b"abc") == (b"abc", "unsupported content-encoding 'compress'")


GARBAGE_ERROR_PREFIX = {"gzip": "gzip: ", "deflate": "deflate: ", "br": "br: ", "zstd": "zstd: ",
                        "gzip, zstd": "zstd: ", "bogus": "unsupported content-encoding 'bogus'"}


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd", "gzip, zstd", "bogus"])
@pytest.mark.parametrize("body", [b"", b"\x00", b"\x1f\x8b\x08\x00garbage", b"\x28\xb5\x2f\xfdjunk", b"\x78\x9c"])
def test_decoding_reports_instead_of_raising_when_body_is_garbage(encoding, body):
    decoded, error = decode_body(encoding, body)
    assert decoded == body  # what could not be decoded is kept exactly as it came
    if body == b"" and encoding != "br" and encoding != "bogus":
        assert error is None  # an empty body is a valid (empty) stream for these decoders
    else:
        # The error names the decoder that failed: the last one applied, decoding runs in reverse.
        assert error.startswith(GARBAGE_ERROR_PREFIX[encoding]), error
    if body == b"\x1f\x8b\x08\x00garbage" and encoding == "gzip":
        assert error is not None
