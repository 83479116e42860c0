"""Where shadowtap connects comes only from config: never from a request's body, headers or request
target, never from a redirect; and config that points a model at link-local or metadata addresses,
a non-HTTP scheme or the proxy itself is refused at start-up.

A second simulator, the decoy, is what every hostile request names; it must never see a request.
"""

import socket
import subprocess
import sys

import httpx
import orjson
import pytest

from shadowtap.core.config import config_from_dict
from shadowtap.core.errors import ConfigError
from shadowtap.proxy.local_processes import stop_process
from tests.support.fake_candidates import FakeCandidate
from tests.support.servers import start_simulator, write_config
from tests.support.shadow_support import QUESTION, candidate_toml, shadows_of


@pytest.fixture(scope="module")
def decoy():
    running = start_simulator()
    running.clear()  # forget the readiness probe
    yield running
    stop_process(running.process)


def asked(marker: str, **fields) -> dict:
    return {**QUESTION, "messages": [{"role": "user", "content": marker}], **fields}


def raw_request(port: int, head: str, body: bytes = b"") -> bytes:
    """Send bytes no HTTP client would (an absolute-form target) and read the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n\r\n" + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def markers_seen(recorded: list[dict]) -> set[str]:
    seen = set()
    for request in recorded:
        body = request.get("body")
        if isinstance(body, dict):
            seen.update(m.get("content") for m in body.get("messages", []) if isinstance(m, dict))
    return seen


@pytest.mark.timeout(120)
def test_urls_hosts_and_forwarding_headers_in_a_request_never_change_where_the_proxy_connects(
        proxy_factory, simulator, decoy):
    decoy_url, decoy_host = decoy.base_url, f"127.0.0.1:{decoy.port}"
    hostile = {
        "body-api_base": ({"api_base": decoy_url, "base_url": decoy_url, "api_key": "sk-x"}, {}),
        "body-model-url": ({"model": f"{decoy_url}/chat/completions"}, {}),
        "host": ({}, {"host": decoy_host}),
        "forwarding-headers": ({}, {"x-forwarded-host": decoy_host, "x-forwarded-proto": "http",
                                    "forwarded": f"for=10.0.0.1;host={decoy_host};proto=http",
                                    "x-forwarded-for": "127.0.0.1", "x-original-url": f"{decoy_url}/chat/completions"}),
    }
    with FakeCandidate("ok") as candidate:
        proxy = proxy_factory(simulator.base_url,
                              extra_config=candidate_toml("c", candidate.base_url, max_concurrency=64))
        ids = []
        for marker, (fields, headers) in hostile.items():
            for streamed in (False, True):
                response = httpx.post(f"{proxy.base_url}/chat/completions",
                                      json=asked(marker, stream=streamed, **fields), headers=headers, timeout=30)
                assert response.status_code == 200, (marker, response.text)
                ids.append(response.headers["x-shadowtap-exchange-id"])
        body = orjson.dumps(asked("absolute-form"))
        answer = raw_request(proxy.port, f"POST {decoy_url}/chat/completions HTTP/1.1\r\nhost: {decoy_host}\r\n"
                             f"content-type: application/json\r\ncontent-length: {len(body)}\r\nconnection: close",
                             body)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        models = raw_request(proxy.port, f"GET {decoy_url}/models HTTP/1.1\r\nhost: {decoy_host}\r\nconnection: close")
        assert models.startswith(b"HTTP/1.1 200") and b"sim-large" in models
        for exchange_id in ids:
            row = shadows_of(proxy.store_path, exchange_id, 1)["c"]
            assert row["outcome"] == "ok", (row["skip_reason"], row["exchange_id"], ids.index(exchange_id))

        assert decoy.recorded() == []
        primary_saw = simulator.recorded()
        assert set(hostile) | {"absolute-form"} <= markers_seen(primary_saw)
        assert ({r["headers"]["host"] for r in primary_saw if r["path"] != "/v1/models"}
                == {f"127.0.0.1:{simulator.port}"})
        assert set(hostile) <= markers_seen(candidate.requests)
        assert {r["headers"]["host"] for r in candidate.requests} == {f"127.0.0.1:{candidate.port}"}
        assert all("api_base" not in r["body"] and "base_url" not in r["body"] for r in candidate.requests)
        assert {r["body"]["model"] for r in candidate.requests} == {"fake-c"}


@pytest.mark.timeout(60)
def test_a_candidate_redirect_is_recorded_as_an_error_and_never_followed(proxy_factory, simulator, decoy):
    with FakeCandidate("redirect", redirect_to=decoy.base_url) as redirecting:
        proxy = proxy_factory(simulator.base_url, extra_config=candidate_toml("moved", redirecting.base_url,
                                                                               api_key_env="MOVED_KEY"),
                              env={"MOVED_KEY": "sk-moved-candidate-key"})
        for streamed in (False, True):
            body = asked(f"redirected {streamed}", stream=streamed)
            direct = httpx.post(f"{simulator.base_url}/chat/completions", json=body)
            response = httpx.post(f"{proxy.base_url}/chat/completions", json=body)
            assert (response.status_code, response.content) == (200, direct.content)
            row = shadows_of(proxy.store_path, response.headers["x-shadowtap-exchange-id"], 1)["moved"]
            assert (row["outcome"], row["response_text"]) == ("error", None)
            assert row["error_class"]
        assert len(redirecting.requests) == 2
        assert decoy.recorded() == []


@pytest.mark.timeout(60)
def test_a_primary_redirect_is_passed_to_the_client_and_never_followed(proxy_factory, decoy):
    with FakeCandidate("redirect", redirect_to=decoy.base_url) as redirecting:
        proxy = proxy_factory(redirecting.base_url)
        response = httpx.post(f"{proxy.base_url}/chat/completions", json=asked("primary redirect"),
                              headers={"authorization": "Bearer sk-client-key"})
        assert response.status_code == 307
        assert response.headers["location"] == f"{decoy.base_url}/chat/completions"
        assert len(redirecting.requests) == 1
        assert decoy.recorded() == []


def model_config(where: str, url: str, **flags) -> dict:
    """A config whose candidate or judge model URL is `url`, the proxy listening on 127.0.0.1:8080."""
    raw: dict = {"server": {"host": "127.0.0.1", "port": 8080}, "primary": {"base_url": "http://127.0.0.1:9000/v1"}}
    if where == "candidate":
        raw["candidates"] = [{"name": "c", "model": "openai/m", "api_base": url, **flags}]
    else:
        raw["judge"] = {"model": "openai/m", "api_base": url, **flags}
    return raw


KEYS = {"candidate": "[[candidates]] 'c' api_base", "judge": "[judge] api_base"}
LINK_LOCAL_OR_METADATA = [
    "http://169.254.169.254/latest/meta-data", "http://169.254.10.20:8000/v1", "http://[fe80::1]:8000/v1",
    "http://[fe80::1%25eth0]/v1", "http://[fd00:ec2::254]/v1", "http://metadata.google.internal/v1",
    "http://metadata.google.internal./v1", "http://[::ffff:169.254.169.254]/v1", "http://0xa9.0xfe.0xa9.0xfe/v1",
    "http://2852039166/v1", "http://instance-data/v1",
]
NOT_HTTP = ["file:///etc/passwd", "gopher://127.0.0.1:70/_x", "ftp://example.com/v1", "unix:///tmp/s.sock"]
THE_PROXY = ["http://127.0.0.1:8080/v1", "http://localhost:8080/v1", "http://[::1]:8080/v1", "http://0.0.0.0:8080"]


@pytest.mark.parametrize("where", ["candidate", "judge"])
@pytest.mark.parametrize("url", LINK_LOCAL_OR_METADATA)
def test_link_local_and_metadata_model_urls_are_refused_unless_private_networks_are_allowed(where, url):
    with pytest.raises(ConfigError) as caught:
        config_from_dict(model_config(where, url))
    assert KEYS[where] in str(caught.value) and "allow_private_network" in str(caught.value)
    config_from_dict(model_config(where, url, allow_private_network=True))


@pytest.mark.parametrize("where", ["candidate", "judge"])
@pytest.mark.parametrize("url", NOT_HTTP + THE_PROXY)
def test_non_http_schemes_and_the_proxys_own_address_are_refused_even_when_private_networks_are_allowed(where, url):
    with pytest.raises(ConfigError) as caught:
        config_from_dict(model_config(where, url, allow_private_network=True))
    assert KEYS[where] in str(caught.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8081/v1", "http://10.1.2.3:8080/v1", "https://api.example.com/v1",
                                 "http://[::1]:9000/v1", "http://169.254.169.254.example.com/v1"])
def test_ordinary_model_urls_are_accepted(url):
    config = config_from_dict(model_config("candidate", url))
    assert [candidate.api_base for candidate in config.candidates] == [url]


def test_the_primary_may_not_be_the_proxy_itself_and_a_port_override_is_checked_too():
    with pytest.raises(ConfigError, match=r"\[primary\] base_url"):
        config_from_dict({"server": {"port": 9000}, "primary": {"base_url": "http://localhost:9000/v1"}})
    config = config_from_dict(model_config("candidate", "http://127.0.0.1:8081/v1"))
    with pytest.raises(ConfigError, match="shadowtap's own address"):
        config.with_overrides(port=8081)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("where, url", [("candidate", "http://169.254.169.254/v1"), ("judge", "http://[fe80::1]/v1"),
                                        ("candidate", "file:///etc/passwd")])
def test_serve_exits_2_naming_the_key_when_a_model_url_is_refused(tmp_path, where, url):
    extra = (f'[[candidates]]\nname = "c"\nmodel = "openai/m"\napi_base = "{url}"\n' if where == "candidate"
             else f'[judge]\nmodel = "openai/m"\napi_base = "{url}"\n')
    path = write_config(tmp_path, "http://127.0.0.1:9/v1", 8080, extra)
    result = subprocess.run([sys.executable, "-m", "shadowtap.core.cli", "serve", "--config", str(path)],
                            capture_output=True, text=True, timeout=50)
    assert result.returncode == 2
    assert KEYS[where] in result.stderr and url in result.stderr


@pytest.mark.parametrize("listen_host, url, refused", [
    ("0.0.0.0", "http://127.0.0.1:8080/v1", True),
    ("0.0.0.0", "http://localhost:8080/v1", True),
    ("::", "http://[::1]:8080/v1", True),
    ("10.0.0.5", "http://10.0.0.5:8080/v1", True),
    ("10.0.0.5", "http://127.0.0.1:8080/v1", False),   # nothing of shadowtap's listens on loopback then
    ("127.0.0.1", "https://127.0.0.1/v1", False),       # port 443, not 8080
])
def test_a_model_url_is_the_proxy_itself_when_it_names_the_listening_host_and_port(listen_host, url, refused):
    raw = model_config("candidate", url)
    raw["server"]["host"] = listen_host
    if refused:
        with pytest.raises(ConfigError, match="shadowtap's own address"):
            config_from_dict(raw)
    else:
        config_from_dict(raw)
