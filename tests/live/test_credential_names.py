"""Which header and query parameter names are credentials, so their values are never stored."""

import orjson
import pytest

from shadowtap.core import secrets
from shadowtap.proxy.headers import is_secret_header, safe_header_dict
from tests.support.factories import raw_exchange, row_builder

HIDDEN = "[secret]"
CREDENTIAL_HEADERS = ["authorization", "api-key", "x-api-key", "x-goog-api-key", "cookie", "set-cookie",
                      "x-client-credential", "x-amz-security-token", "x-amz-signature", "x-upstream-secret",
                      "x-db-password", "x-session-id", "proxy-authorization", "x-shadowtap-key", "x-sig",
                      "x-access-jwt", "x-account-pwd", "idempotency-key"]
ORDINARY_HEADERS = ["content-type", "accept", "accept-encoding", "user-agent", "x-request-id", "anthropic-version",
                    "anthropic-beta", "x-stainless-package-version", "openai-version", "openai-processing-ms",
                    "x-ratelimit-remaining-tokens", "anthropic-ratelimit-input-tokens-limit", "retry-after",
                    "x-shadowtap-task", "x-shadowtap-risk-tier", "x-shadowtap-team", "x-design-system"]


@pytest.mark.parametrize("name", CREDENTIAL_HEADERS)
def test_a_header_is_secret_when_its_name_suggests_a_credential(name):
    assert is_secret_header(name.encode())


@pytest.mark.parametrize("name", ORDINARY_HEADERS)
def test_a_header_is_kept_when_its_name_suggests_no_credential(name):
    assert not is_secret_header(name.encode())


@pytest.mark.parametrize("name", ["openai-organization", "openai-project"])
def test_account_identifiers_are_kept_out_of_the_store_although_they_are_not_credentials(name):
    assert is_secret_header(name.encode()) and not secrets.name_suggests_credential(name)


def test_safe_header_dict_drops_a_credential_header_that_no_list_names():
    headers = [(b"x-client-credential", b"hunter2"), (b"content-type", b"application/json")]
    assert safe_header_dict(headers) == {"content-type": "application/json"}


@pytest.mark.parametrize("query, expected", [
    ("key=AIzaCanary", f"key={HIDDEN}"),
    ("alt=sse&key=AIzaCanary", f"alt=sse&key={HIDDEN}"),
    ("api_key=a&api-key=b&apikey=c", f"api_key={HIDDEN}&api-key={HIDDEN}&apikey={HIDDEN}"),
    ("token=a&access_token=b&id_token=c", f"token={HIDDEN}&access_token={HIDDEN}"
                                          f"&id_token={HIDDEN}"),
    ("sv=2024-01-01&sig=abc%2Bdef&se=2030", f"sv=2024-01-01&sig={HIDDEN}&se=2030"),
    ("X-Amz-Credential=AKIA%2F1&X-Amz-Signature=ff", f"X-Amz-Credential={HIDDEN}"
                                                     f"&X-Amz-Signature={HIDDEN}"),
    ("client_secret=s&password=p&pwd=q", f"client_secret={HIDDEN}&password={HIDDEN}"
                                         f"&pwd={HIDDEN}"),
    ("k%65y=AIzaCanary", f"k%65y={HIDDEN}"),  # the name as the primary will read it
    ("key%5B%5D=a&key[]=b", f"key%5B%5D={HIDDEN}&key[]={HIDDEN}"),
])
def test_query_credentials_are_replaced_by_name_whatever_their_spelling(query, expected):
    assert secrets.redact_query(query) == expected


@pytest.mark.parametrize("query", ["", "api-version=2024-02-01", "limit=20&after=file-abc&order=desc",
                                   "key", "key=", "a=1&&b=2&", "stream=true;key", "design=x&signal=y"])
def test_a_query_without_a_credential_value_is_kept_byte_for_byte(query):
    assert secrets.redact_query(query) == query


def test_a_captured_row_has_no_query_or_header_credential_but_keeps_tags_and_ordinary_headers():
    raw = raw_exchange(request_headers=[
        (b"content-type", b"application/json"), (b"x-request-id", b"req-7"),
        (b"x-client-credential", b"canary-header-credential"), (b"x-shadowtap-task", b"support"),
        (b"x-shadowtap-team", b"search"), (b"x-shadowtap-session-token", b"canary-tag-token")])
    raw.query = "alt=sse&key=canary-query-key&api-version=2024-02-01"
    row = row_builder().build(raw)
    assert row["query"] == f"alt=sse&key={HIDDEN}&api-version=2024-02-01"
    assert orjson.loads(row["request_headers"]) == {
        "content-type": "application/json", "x-request-id": "req-7", "x-shadowtap-task": "support",
        "x-shadowtap-team": "search"}
    assert row["task"] == "support" and orjson.loads(row["tags"]) == {"team": "search"}
    assert b"canary" not in orjson.dumps(row)
