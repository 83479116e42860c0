"""The config file: the example loads, minimal files work, and every mistake exits 2 by name."""

import subprocess
import sys
from pathlib import Path

import pytest

from shadowtap.core.config import ShadowtapConfig, config_from_dict, load_config
from shadowtap.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_example_config_loads_and_documents_every_key():
    config = load_config(REPO / "config.example.toml")
    assert config.primary.base_url == "http://127.0.0.1:9000/v1"
    text = (REPO / "config.example.toml").read_text()
    for section_name, section_type in config_section_types().items():
        for key in section_type.__dataclass_fields__:
            line = f"\n{key} = "
            assert line in text, f"[{section_name}] {key} missing from config.example.toml"
            comment_above = text.split(line)[0].rstrip().splitlines()[-1]
            assert comment_above.startswith("#"), f"[{section_name}] {key} has no comment above it"


def config_section_types() -> dict[str, type]:
    import dataclasses
    import typing

    hints = typing.get_type_hints(ShadowtapConfig)
    types = {}
    for field in dataclasses.fields(ShadowtapConfig):
        if field.name == "source":
            continue
        annotation = hints[field.name]
        types[field.name] = typing.get_args(annotation)[0] if typing.get_origin(annotation) is list else annotation
    return types


def test_example_config_values_equal_the_defaults():
    config = load_config(REPO / "config.example.toml")
    defaults = ShadowtapConfig()
    for section in ("server", "store", "redaction", "shadow", "judge", "eval", "contexts", "freshness", "contracts",
                    "gate"):
        assert getattr(config, section) == getattr(defaults, section), section
    (example_candidate,) = config.candidates
    assert example_candidate.enabled is False  # the file runs as it stands, mirroring nothing


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
    ({"primary": {"base_url": "http://x/v1"}, "server": {"port": 70000}},
     ["[server] port", "70000", "between 0 and 65535"]),
    ({"primary": {"base_url": "ftp://x/v1"}}, ["[primary] base_url", "ftp://x/v1", "http:// or https://"]),
    ({"primary": {"base_url": "http://u:p@x/v1"}}, ["[primary] base_url", "credentials", "api_key_env"]),
    ({"primary": {"base_url": "http://x/v1", "api_key_env": "sk-live-123"}},
     ["api_key_env", "NAME of an environment variable"]),
    ({"primary": {"base_url": "http://x/v1"}, "redaction": {"patterns": ["("]}}, ["patterns[0]", "regular expression"]),
    ({"primary": {"base_url": "http://x/v1"}, "redaction": {"emails": "yes"}}, ["[redaction] emails", "true or false"]),
    ({"server": {"port": 1}}, ["[primary] base_url is missing"]),
    ({"primary": {"base_url": "http://x/v1"}, "candidates": [{"name": "c", "model": "gpt-4o"}]},
     ["model = 'gpt-4o'", "litellm model string"]),
    ({"primary": {"base_url": "http://x/v1"},
      "candidates": [{"name": "c", "model": "openai/m", "api_base": "http://169.254.169.254/v1"}]},
     ["169.254.169.254", "link-local or cloud-metadata", "allow_private_network"]),
    ({"primary": {"base_url": "http://x/v1"}, "candidates": [{"name": "c", "model": "openai/m", "sample_rate": 2}]},
     ["sample_rate", "between 0 and 1"]),
    ({"primary": {"base_url": "http://x/v1"},
      "candidates": [{"name": "c", "model": "openai/m", "endpoints": ["completions"]}]},
     ["endpoints", "'completions' cannot be mirrored yet",
      "chat.completions, responses, anthropic.messages, embeddings"]),
    ({"primary": {"base_url": "http://x/v1"}, "candidates": [{"name": "c", "model": "openai/m", "api": "messages"}]},
     ["api = 'messages'", "chat, responses"]),
    ({"primary": {"base_url": "http://x/v1"},
      "candidates": [{"name": "c", "model": "openai/m"}, {"name": "c", "model": "openai/n"}]},
     ["'c' is used twice"]),
    ({"primary": {"base_url": "http://x/v1"}, "candidates": [{"model": "openai/m"}]},
     ["name is missing"]),
    ({"primary": {"base_url": "http://x/v1"}, "gate": {"max_error_rate": float("nan")}},
     ["[gate] max_error_rate = nan", "between 0 and 1"]),
    ({"primary": {"base_url": "http://x/v1"}, "shadow": {"worker_nice": 20}},
     ["[shadow] worker_nice = 20", "between 0 and 19"]),
    ({"primary": {"base_url": "http://x/v1"}, "server": {"max_header_bytes": 10}},
     ["[server] max_header_bytes = 10", "at least 1024"]),
    ({"primary": {"base_url": "http://x/v1"}, "server": {"max_header_count": 0}},
     ["[server] max_header_count = 0", "at least 1"]),
    ({"primary": {"base_url": "http://x/v1"}, "server": {"max_connections": -5}},
     ["[server] max_connections = -5", "at least 1"]),
    ({"primary": {"base_url": "http://x/v1"}, "server": {"max_connections": 1.5}},
     ["[server] max_connections = 1.5", "integer"]),
    ({"primary": {"base_url": "http://x/v1"}, "store": {"queue_max_bytes": 0}},
     ["[store] queue_max_bytes = 0", "at least 1"]),
    ({"primary": {"base_url": "http://x/v1"}, "store": {"queue_max_bytes": "1G"}},
     ["[store] queue_max_bytes = '1G'", "integer"]),
    ({"primary": {"base_url": "http://x/v1"}, "store": {"queue_max_bytes": 1000},
      "server": {"max_body_bytes": 5000}},
     ["[store] queue_max_bytes = 1000", "at least [server] max_body_bytes (5000)"]),
])
def test_bad_config_names_the_key_value_and_what_is_accepted(raw, fragments):
    with pytest.raises(ConfigError) as caught:
        config_from_dict(raw)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_integers_are_accepted_where_numbers_are_expected():
    config = config_from_dict({"primary": {"base_url": "http://x/v1", "connect_timeout_s": 3}})
    assert config.primary.connect_timeout_s == 3.0


@pytest.mark.e2e
def test_serve_exits_2_with_the_key_when_the_config_has_an_unknown_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[primary]\nbase_url = "http://127.0.0.1:9/v1"\n[store]\npaht = "x.db"\n')
    result = subprocess.run([sys.executable, "-m", "shadowtap.core.cli", "serve", "--config", str(path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "[store] paht" in result.stderr and "unknown key" in result.stderr


@pytest.mark.e2e
def test_serve_exits_2_when_the_config_is_not_toml(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[primary\n")
    result = subprocess.run([sys.executable, "-m", "shadowtap.core.cli", "serve", "--config", str(path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "not valid TOML" in result.stderr


def test_port_override_is_validated_like_the_file(tmp_path):
    config = config_from_dict({"primary": {"base_url": "http://x/v1"}})
    assert config.with_overrides(port=9999).server.port == 9999
    with pytest.raises(ConfigError, match="port"):
        config.with_overrides(port=-1)
