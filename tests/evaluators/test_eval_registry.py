"""The evaluator registry: built-ins by name, third-party ones by entry point, clear load errors."""

from importlib.metadata import EntryPoint

import pytest

import shadowtap.evaluators.registry as registry
from shadowtap.core.config import ShadowtapConfig, config_from_dict
from shadowtap.core.errors import ConfigError
from shadowtap.evaluators.contract import ContractEvaluator
from shadowtap.evaluators.freshness import FreshnessEvaluator
from shadowtap.evaluators.registry import EvaluatorLoadError, available, build_evaluators, load_class
from tests.support.eval_support import LengthEvaluator, fake_entry_points


@pytest.fixture
def fake_plugins(monkeypatch):
    monkeypatch.setattr(registry, "_entry_points", fake_entry_points)


def test_builtin_evaluators_load_by_name_when_their_module_exists():
    assert load_class("freshness") is FreshnessEvaluator
    assert load_class("contract") is ContractEvaluator
    assert available()["grounding"] == "shadowtap.evaluators.grounding:GroundingEvaluator"


def test_third_party_evaluators_load_from_entry_points_when_installed(fake_plugins, tmp_path):
    assert available()["length"] == "tests.support.eval_support:LengthEvaluator"
    evaluators, skipped = build_evaluators(ShadowtapConfig(), ["length", "freshness"], config_dir=tmp_path)
    assert [type(evaluator) for evaluator in evaluators] == [LengthEvaluator, FreshnessEvaluator]
    assert skipped == []


def test_builtin_names_win_when_a_plugin_reuses_them(monkeypatch):
    monkeypatch.setattr(registry, "_entry_points", lambda: [
        EntryPoint(name="freshness", value="tests.support.eval_support:LengthEvaluator", group="shadowtap.evaluators")])
    assert load_class("freshness") is FreshnessEvaluator


def test_unknown_name_is_an_error_listing_the_known_ones_when_requested():
    with pytest.raises(EvaluatorLoadError, match=r"unknown evaluator 'nope': expected one of .*freshness"):
        load_class("nope")


def test_import_failure_names_the_evaluator_when_its_module_is_missing(monkeypatch):
    monkeypatch.setattr(registry, "_entry_points", lambda: [
        EntryPoint(name="ghost", value="no_such_package.mod:Ghost", group="shadowtap.evaluators")])
    with pytest.raises(EvaluatorLoadError) as raised:
        load_class("ghost")
    assert "evaluator 'ghost' (no_such_package.mod:Ghost) cannot be loaded: ModuleNotFoundError" in str(raised.value)
    assert isinstance(raised.value, ConfigError)   # the CLI exits 2 for it


def test_class_not_following_the_contract_is_rejected_when_loaded(monkeypatch):
    monkeypatch.setattr(registry, "_entry_points", lambda: [
        EntryPoint(name="bad", value="pathlib:Path", group="shadowtap.evaluators")])
    with pytest.raises(EvaluatorLoadError, match="does not follow the evaluator contract"):
        load_class("bad")


def test_default_set_skips_judge_evaluators_when_no_judge_model_is_configured(fake_plugins, monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "BUILTIN", {"freshness": registry.BUILTIN["freshness"]})
    evaluators, skipped = build_evaluators(ShadowtapConfig(), config_dir=tmp_path)
    assert "judged" not in [evaluator.name for evaluator in evaluators]
    assert skipped == ["judged: needs a judge model and [judge] model is not set"]
    with_judge = config_from_dict({"primary": {"base_url": "http://127.0.0.1:9000/v1"},
                                   "judge": {"model": "openai/gpt-4o-mini"}})
    evaluators, skipped = build_evaluators(with_judge, config_dir=tmp_path)
    assert "judged" in [evaluator.name for evaluator in evaluators] and skipped == []


def test_configured_list_picks_the_evaluators_when_no_names_are_given(fake_plugins, tmp_path):
    config = config_from_dict({"primary": {"base_url": "http://127.0.0.1:9000/v1"},
                               "eval": {"evaluators": ["contract", "judged"]}})
    evaluators, _ = build_evaluators(config, config_dir=tmp_path)
    assert [evaluator.name for evaluator in evaluators] == ["contract", "judged"]
