"""The config file: the example loads, minimal files work, and every mistake exits 2 by name."""

import subprocess
import sys
from pathlib import Path

import pytest

from proxy.config import ShadowtapConfig, config_from_dict, load_config
from proxy.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def test_example_config_loads_and_documents_every_key():
    config = load_config(REPO / "config.example.toml")
    assert config.primary.base_url == "http://127.0.0.1:9000/v1"
    text = (REPO / "config.example.toml").read_text()
    defaults = ShadowtapConfig()
    for section_name in ("server", "primary", "store", "redaction"):
        section = getattr(defaults, section_name)
        for key in section.__dataclass_fields__:
            assert f"\n{key} = " in text, f"[{section_name}] {key} missing from config.example.toml"


def test_example_config_values_equal_the_defaults():
    config = load_config(REPO / "config.example.toml")
    assert config.server == ShadowtapConfig().server
    assert config.store == ShadowtapConfig().store
    assert config.redaction == ShadowtapConfig().redaction


def test_minimal_config_works_as_it_stands(tmp_path):
    path = tmp_path / "minimal.toml"
    path.write_text('[server]\nhost = "127.0.0.1"\nport = 8123\n[primary]\nbase_url = "http://127.0.0.1:9000/v1"\n'
                    '[store]\npath = "captures.db"\n')
    config = load_config(path)
    assert (config.server.port, config.store.path) == (8123, "captures.db")


@pytest.mark.parametrize("raw, fragments", [
    ({"primary": {"base_url": "http://x/v1", "bogus": 1}}, ["[primary] bogus", "unknown key", "base_url"]),
    ({"primry": {}}, ["unknown section [primry]", "[primary]"]),
    ({"primary": {"base_url": "http://x/v1"}, "server": {"port": "80"}}, ["[server] port", "'80'", "integer"]),
    ({"primary": {"base_url": "http://x/v1"}, "server": {"port": 70000}}, ["[server] port", "70000", "between 0 and 65535"]),
    ({"primary": {"base_url": "ftp://x/v1"}}, ["[primary] base_url", "ftp://x/v1", "http:// or https://"]),
    ({"primary": {"base_url": "http://u:p@x/v1"}}, ["[primary] base_url", "credentials", "api_key_env"]),
    ({"primary": {"base_url": "http://x/v1", "api_key_env": "sk-live-123"}}, ["api_key_env", "NAME of an environment variable"]),
    ({"primary": {"base_url": "http://x/v1"}, "redaction": {"patterns": ["("]}}, ["patterns[0]", "regular expression"]),
    ({"primary": {"base_url": "http://x/v1"}, "redaction": {"emails": "yes"}}, ["[redaction] emails", "true or false"]),
    ({"server": {"port": 1}}, ["[primary] base_url is missing"]),
])
def test_bad_config_names_the_key_value_and_what_is_accepted(raw, fragments):
    with pytest.raises(ConfigError) as caught:
        config_from_dict(raw)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_integers_are_accepted_where_numbers_are_expected():
    config = config_from_dict({"primary": {"base_url": "http://x/v1", "connect_timeout_s": 3}})
    assert config.primary.connect_timeout_s == 3.0


def test_serve_exits_2_with_the_key_when_the_config_has_an_unknown_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[primary]\nbase_url = "http://127.0.0.1:9/v1"\n[store]\npaht = "x.db"\n')
    result = subprocess.run([sys.executable, "-m", "proxy.cli", "serve", "--config", str(path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "[store] paht" in result.stderr and "unknown key" in result.stderr


def test_serve_exits_2_when_the_config_is_not_toml(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[primary\n")
    result = subprocess.run([sys.executable, "-m", "proxy.cli", "serve", "--config", str(path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "not valid TOML" in result.stderr


def test_port_override_is_validated_like_the_file(tmp_path):
    config = config_from_dict({"primary": {"base_url": "http://x/v1"}})
    assert config.with_overrides(port=9999).server.port == 9999
    with pytest.raises(ConfigError, match="port"):
        config.with_overrides(port=-1)
