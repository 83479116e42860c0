"""Optional proxy keys: requests without one get 401; the key never reaches the primary."""

import httpx
import pytest

QUESTION = {"model": "sim-large", "messages": [{"role": "user", "content": "support hours?"}]}


def test_requests_without_a_proxy_key_get_401_when_keys_are_configured(proxy_factory, simulator):
    proxy = proxy_factory(simulator.base_url, extra_config='[server]\nclient_keys_env = "TEST_PROXY_KEYS"',
                          env={"TEST_PROXY_KEYS": "team-a-key, team-b-key"})
    simulator.clear()
    refused = httpx.post(f"{proxy.base_url}/chat/completions", json=QUESTION)
    wrong = httpx.post(f"{proxy.base_url}/chat/completions", json=QUESTION, headers={"x-shadowtap-key": "guess"})
    assert refused.status_code == wrong.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_proxy_key"
    assert simulator.recorded() == []
    accepted = httpx.post(f"{proxy.base_url}/chat/completions", json=QUESTION,
                          headers={"x-shadowtap-key": "team-b-key", "authorization": "Bearer sk-client"})
    assert accepted.status_code == 200
    (received,) = simulator.recorded()
    assert "x-shadowtap-key" not in received["headers"]
    assert received["headers"]["authorization"] == "Bearer sk-client"


def test_configured_primary_key_replaces_the_clients_credentials(proxy_factory, simulator):
    proxy = proxy_factory(simulator.base_url,
                          extra_config='[server]\nclient_keys_env = "TEST_PROXY_KEYS"\n'
                                       '[primary]\napi_key_env = "TEST_PRIMARY_KEY"',
                          env={"TEST_PROXY_KEYS": "proxy-key", "TEST_PRIMARY_KEY": "sk-primary"})
    simulator.clear()
    response = httpx.post(f"{proxy.base_url}/chat/completions", json=QUESTION,
                          headers={"authorization": "Bearer proxy-key"})
    assert response.status_code == 200
    (received,) = simulator.recorded()
    assert received["headers"]["authorization"] == "Bearer sk-primary"


@pytest.mark.e2e
def test_serve_exits_2_when_the_primary_key_variable_is_not_set(tmp_path):
    import subprocess
    import sys

    config = tmp_path / "c.toml"
    config.write_text('[primary]\nbase_url = "http://127.0.0.1:9/v1"\napi_key_env = "SHADOWTAP_TEST_UNSET_VAR"\n'
                      f'[store]\npath = "{tmp_path / "s.db"}"\n')
    result = subprocess.run([sys.executable, "-m", "shadowtap.core.cli", "serve", "--config", str(config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "SHADOWTAP_TEST_UNSET_VAR" in result.stderr and "not set" in result.stderr
