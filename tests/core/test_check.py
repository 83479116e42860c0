"""`shadowtap check`: the primary and judge reachable, model strings litellm can route, *_env set."""

import logging
import socket

import orjson
import pytest
from click.testing import CliRunner

from shadowtap.core import readiness
from shadowtap.core.cli import cli
from shadowtap.core.config import config_from_dict
from shadowtap.proxy.local_processes import free_port


@pytest.fixture
def listening():
    """A loopback port that accepts connections (nothing needs to answer: the check only connects)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    sock.close()


def write_config(tmp_path, primary_url: str, *candidates: str, extra: str = "") -> str:
    text = f'[primary]\nbase_url = "{primary_url}"\n[store]\npath = "{tmp_path / "c.db"}"\n{extra}\n'
    text += "".join(candidates)
    path = tmp_path / "shadowtap.toml"
    path.write_text(text)
    return str(path)


def candidate(name: str, model: str, **options: str) -> str:
    lines = [f'[[candidates]]\nname = "{name}"\nmodel = "{model}"']
    lines += [f'{key} = "{value}"' for key, value in options.items()]
    return "\n".join(lines) + "\n"


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, ["check", *args], env=env)


def test_check_exits_0_when_the_primary_is_reachable_every_key_is_set_and_litellm_knows_each_provider(
        tmp_path, listening, monkeypatch):
    monkeypatch.setenv("FAST_KEY", "sk-fast-candidate-key-123456")
    config = write_config(tmp_path, listening,
                          candidate("fast", "openai/gpt-4o-mini", api_key_env="FAST_KEY", api_base=listening))
    result = run("--config", config)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("ok") and "[primary] base_url" in line for line in lines)
    assert any(line.startswith("ok") and "'fast' model" in line and "'openai'" in line for line in lines)
    assert any(line.startswith("ok") and "'fast' api_key_env" in line and "FAST_KEY is set" in line for line in lines)
    assert "sk-fast-candidate-key-123456" not in result.output


def test_check_names_each_problem_and_exits_1_when_a_model_has_a_typo_a_key_is_unset_and_the_primary_is_down(
        tmp_path, monkeypatch):
    monkeypatch.delenv("TYPO_KEY", raising=False)
    down = f"http://127.0.0.1:{free_port()}/v1"
    config = write_config(tmp_path, down, candidate("typo", "opnai/gpt-4o-mini", api_key_env="TYPO_KEY"))
    result = run("--config", config)
    assert result.exit_code == 1, result.output
    problems = [line for line in result.output.splitlines() if line.startswith("PROBLEM")]
    assert len(problems) == 3, result.output
    assert any("[primary] base_url" in line and "cannot be reached" in line for line in problems)
    assert any("'typo' model" in line and "'opnai/gpt-4o-mini'" in line and "no provider 'opnai'" in line
               for line in problems)
    assert any("'typo' api_key_env" in line and "TYPO_KEY is not set" in line for line in problems)


def test_check_prints_json_with_a_status_per_check(tmp_path, listening):
    result = run("--config", write_config(tmp_path, listening), "--json")
    assert result.exit_code == 0, result.output
    checks = orjson.loads(result.output)
    assert any(check["key"] == "[primary] base_url" and check["status"] == "ok" for check in checks)
    assert {check["status"] for check in checks} <= {"ok", "note", "problem"}


def test_an_unset_admin_token_is_a_note_not_a_problem_since_unset_turns_the_api_off(tmp_path, listening, monkeypatch):
    monkeypatch.delenv("SHADOWTAP_ADMIN_TOKEN", raising=False)
    result = run("--config", write_config(tmp_path, listening))
    assert result.exit_code == 0, result.output
    assert any(line.startswith("note") and "[admin] token_env" in line for line in result.output.splitlines())


def test_the_judge_is_probed_when_it_has_an_api_base(tmp_path, listening):
    down = f"http://127.0.0.1:{free_port()}/v1"
    config = write_config(tmp_path, listening, extra=f'[judge]\nmodel = "openai/gpt-4o-mini"\napi_base = "{down}"\n')
    result = run("--config", config)
    assert result.exit_code == 1
    assert any(line.startswith("PROBLEM") and "[judge] api_base" in line for line in result.output.splitlines())


def test_a_bad_config_is_a_usage_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[primary]\nbase_url = 'not a url'\n")
    assert run("--config", str(path)).exit_code == 2


def test_disabled_candidates_are_not_checked():
    config = config_from_dict({"primary": {"base_url": "http://127.0.0.1:9/v1"},
                               "candidates": [{"name": "off", "model": "opnai/x", "enabled": False,
                                               "api_key_env": "OFF_KEY_NEVER_SET"}]})
    assert readiness.model_checks(config, litellm=None) == []
    assert [r for r in readiness.environment_checks(config) if "OFF_KEY" in r.detail] == []


def test_problems_are_logged_as_one_warning_each_with_the_key(caplog):
    results = [readiness.CheckResult("[primary] base_url", "problem", "down"),
               readiness.CheckResult("[admin] token_env", "note", "off"),
               readiness.CheckResult("[[candidates]] 'a' model", "ok", "fine")]
    with caplog.at_level(logging.WARNING, logger="shadowtap"):
        readiness.log_problems(results, logging.getLogger("shadowtap.test"))
    assert [record.getMessage() for record in caplog.records] == ["start-up check: [primary] base_url: down"]
