"""stored_headers: the headers a capture row keeps, with each name's verdict remembered."""

import pytest

from shadowtap.proxy.capture.record import stored_headers
from shadowtap.proxy.headers import safe_header_dict

HEADER_LISTS = [
    [(b"content-type", b"application/json"), (b"authorization", b"Bearer sk-1"), (b"x-api-key", b"k")],
    [(b"X-Custom", b"1"), (b"x-custom", b"2"), (b"Cookie", b"a=b"), (b"x-goog-api-key", b"g"),
     (b"connection", b"close")],
    [(b"x-ratelimit-remaining-tokens", b"10"), (b"set-cookie", b"s=1"), (b"x-request-id", b"r-1"), (b"date", b"Mon")],
    [(b"X-Client-Credential", b"c"), (b"x-shadowtap-task", b"t"), (b"user-agent", "é".encode("latin-1"))],
]


@pytest.mark.parametrize("headers", HEADER_LISTS)
def test_stored_headers_are_the_safe_header_dict_when_names_repeat(headers):
    for _ in range(3):  # the second and third time, every name's verdict is remembered
        assert stored_headers(headers) == safe_header_dict(headers)
