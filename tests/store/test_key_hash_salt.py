"""[store] key_hash_salt_env: the salt of client_key_hash, shared by every replica through an
environment variable, so one client's key hashes the same on all of them; its value never
appears in an error message and is scrubbed from logs like a key."""

from __future__ import annotations

import pytest

from shadowtap.core.config import config_from_dict
from shadowtap.core.errors import ConfigError
from shadowtap.core.secrets import configured_secrets
from shadowtap.core.store import CaptureStore
from tests.support.factories import raw_exchange

SALT = "9f1c2b7a4e6d8f00112233445566778899aabbccddeeff00a1b2c3d4e5f60718"
VARIABLE = "SHADOWTAP_TEST_KEY_HASH_SALT"


def store_config(**keys):
    return config_from_dict({"primary": {"base_url": "http://127.0.0.1:9000/v1"}, "store": keys}).store


def hash_of_key(salt: bytes, key: bytes) -> str | None:
    """client_key_hash as the capture path computes it, for a request sent with this key."""
    from shadowtap.core.redaction import Redactor
    from shadowtap.proxy.capture.pricing import PriceTable
    from shadowtap.proxy.capture.record import CaptureRowBuilder

    builder = CaptureRowBuilder(redactor=Redactor(), prices=PriceTable({}), client_key_salt=salt,
                                max_body_bytes=1 << 20)
    return builder.build(raw_exchange(request_headers=[(b"authorization", b"Bearer " + key)]))["client_key_hash"]


def test_two_replicas_hash_one_client_key_alike_with_the_shared_salt_and_apart_without(tmp_path, monkeypatch):
    monkeypatch.setenv(VARIABLE, SALT)
    stores = [CaptureStore.open(tmp_path / f"replica{index}.db") for index in range(2)]
    own = [hash_of_key(store.client_key_salt(), b"sk-client-one") for store in stores]
    assert own[0] != own[1]  # each store's own salt: one key, two hashes
    # Each replica reads its own config; the variable holds the same salt on both hosts.
    shared = [hash_of_key(store_config(path=str(store.path), key_hash_salt_env=VARIABLE).key_hash_salt(),
                          b"sk-client-one") for store in stores]
    assert shared[0] == shared[1] is not None
    assert shared[0] != hash_of_key(bytes.fromhex(SALT), b"sk-client-two")
    for store in stores:
        store.close()


def test_without_the_key_each_store_keeps_its_own_salt():
    assert store_config().key_hash_salt() is None


@pytest.mark.parametrize(("value", "complaint"), [
    (None, "not set"), ("not-hex-at-all-but-long-enough-to-count", "hex digits"), ("abcd" * 4, "at least 32"),
])
def test_a_missing_or_weak_shared_salt_is_a_config_error_that_never_shows_the_value(monkeypatch, value, complaint):
    if value is None:
        monkeypatch.delenv(VARIABLE, raising=False)
    else:
        monkeypatch.setenv(VARIABLE, value)
    with pytest.raises(ConfigError) as raised:
        store_config(key_hash_salt_env=VARIABLE).key_hash_salt()
    assert complaint in str(raised.value) and VARIABLE in str(raised.value)
    assert value is None or value not in str(raised.value)


def test_the_shared_salt_is_scrubbed_from_logs_like_a_key(monkeypatch):
    monkeypatch.setenv(VARIABLE, SALT)
    config = config_from_dict({"primary": {"base_url": "http://127.0.0.1:9000/v1"},
                               "store": {"key_hash_salt_env": VARIABLE}})
    assert SALT in configured_secrets(config)


def test_a_bad_variable_name_is_refused_when_the_config_loads():
    with pytest.raises(ConfigError, match="key_hash_salt_env"):
        store_config(key_hash_salt_env="not a name")


@pytest.mark.e2e  # two `shadowtap serve` replicas and the simulator
def test_two_running_replicas_store_one_hash_for_one_client_key_with_the_shared_salt(proxy_factory, simulator):
    import httpx

    from tests.support.store_reading import wait_for_rows

    replicas = [proxy_factory(simulator.base_url, extra_config=f'[store]\nkey_hash_salt_env = "{VARIABLE}"\n',
                              env={VARIABLE: SALT}) for _ in range(2)]
    for replica in replicas:
        httpx.post(f"{replica.base_url}/chat/completions", headers={"authorization": "Bearer sk-client-one"},
                   json={"model": "sim-small", "messages": [{"role": "user", "content": "hi"}]}).raise_for_status()
    hashes = [row["client_key_hash"] for replica in replicas for row in wait_for_rows(replica.store_path, 1)]
    assert len(hashes) == 2 and hashes[0] == hashes[1] == hash_of_key(bytes.fromhex(SALT), b"sk-client-one")
