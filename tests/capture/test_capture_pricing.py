"""PriceTable: cost in USD from litellm's price file, read without importing litellm."""

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from shadowtap.proxy.capture import pricing
from shadowtap.proxy.capture.pricing import PriceTable

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def prices() -> PriceTable:
    return PriceTable(
        {
            "sample_spec": {"input_cost_per_token": 1.0, "output_cost_per_token": 1.0},
            "gpt-4o-mini": {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07},
            "gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05},
            "gpt-4o-2024-05-13": {"input_cost_per_token": 5e-06, "output_cost_per_token": 1.5e-05},
            "azure/gpt-4o": {"input_cost_per_token": 2.75e-06, "output_cost_per_token": 1.1e-05},
            "text-embedding-3-small": {"input_cost_per_token": 2e-08, "output_cost_per_token": 0.0},
            "embed-only": {"input_cost_per_token": 1e-07},
            "dall-e-3": {"input_cost_per_token": None, "output_cost_per_token": None},
        }
    )


@pytest.fixture
def fresh_litellm_cache():
    pricing._litellm_prices.cache_clear()
    yield
    pricing._litellm_prices.cache_clear()


def test_cost_is_input_plus_output_price_when_model_is_listed(prices):
    assert prices.cost_usd("gpt-4o-mini", 1000, 200) == pytest.approx(1000 * 1.5e-07 + 200 * 6e-07)


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "openrouter/openai/gpt-4o-mini"])
def test_provider_prefix_is_dropped_when_prefixed_name_is_not_listed(prices, model):
    assert prices.cost_usd(model, 1000, 200) == prices.cost_usd("gpt-4o-mini", 1000, 200)


def test_prefixed_price_is_used_when_prefixed_name_is_listed(prices):
    assert prices.cost_usd("azure/gpt-4o", 1_000_000, 0) == pytest.approx(2.75)


@pytest.mark.parametrize("model", ["gpt-4o-mini-2024-07-18", "openai/gpt-4o-mini-2024-07-18", "gpt-4o-mini-20240718"])
def test_dated_suffix_is_dropped_when_dated_name_is_not_listed(prices, model):
    assert prices.cost_usd(model, 1000, 200) == prices.cost_usd("gpt-4o-mini", 1000, 200)


def test_dated_price_is_used_when_dated_name_is_listed(prices):
    assert prices.cost_usd("gpt-4o-2024-05-13", 1_000_000, 0) == pytest.approx(5.0)


@pytest.mark.parametrize("model", ["claude-unknown", "sample_spec", "", None, "gpt-4o-mini-preview"])
def test_cost_is_none_when_model_is_unknown(prices, model):
    assert prices.cost_usd(model, 10, 10) is None


@pytest.mark.parametrize(("prompt", "completion"), [(None, 10), (10, None), (None, None)])
def test_cost_is_none_when_token_counts_are_missing(prices, prompt, completion):
    assert prices.cost_usd("gpt-4o", prompt, completion) is None


def test_missing_output_price_costs_nothing_when_no_output_tokens_were_used(prices):
    assert prices.cost_usd("embed-only", 1000, 0) == pytest.approx(1e-04)
    assert prices.cost_usd("embed-only", 1000, 5) is None


def test_cost_is_none_when_model_is_not_priced_per_token(prices):
    assert prices.cost_usd("dall-e-3", 10, 0) is None


def test_table_is_empty_with_a_warning_when_litellm_is_not_installed(monkeypatch, caplog, fresh_litellm_cache):
    monkeypatch.setattr(pricing, "_litellm_prices_path", lambda: None)
    with caplog.at_level(logging.WARNING, logger="shadowtap.proxy.capture.pricing"):
        table = PriceTable.from_litellm_package()
    assert len(table) == 0
    assert table.cost_usd("gpt-4o-mini", 10, 10) is None
    assert "litellm is not installed" in caplog.text


def test_table_is_empty_with_a_warning_when_price_file_is_missing(monkeypatch, caplog, tmp_path, fresh_litellm_cache):
    monkeypatch.setattr(pricing, "_litellm_prices_path", lambda: tmp_path / "gone.json")
    with caplog.at_level(logging.WARNING, logger="shadowtap.proxy.capture.pricing"):
        table = PriceTable.from_litellm_package()
    assert len(table) == 0
    assert "gone.json" in caplog.text


def test_real_price_file_prices_gpt_4o_mini_when_litellm_is_installed_but_never_imported():
    # A fresh interpreter, so nothing else in the test session can have imported litellm.
    script = (
        "import sys\n"
        "from proxy.capture.pricing import PriceTable\n"
        "cost = PriceTable.from_litellm_package().cost_usd('gpt-4o-mini', 1000, 1000)\n"
        "assert cost is not None and cost > 0, cost\n"
        "assert 'litellm' not in sys.modules, 'litellm was imported'\n"
        "print('ok', cost)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("ok ")


def test_cost_is_the_same_when_a_model_is_priced_again(prices):
    first = [prices.cost_usd(model, 1000, 200) for model in ("openai/gpt-4o-2024-08-06", "gpt-4o", "unknown")]
    assert [prices.cost_usd(model, 1000, 200) for model in ("openai/gpt-4o-2024-08-06", "gpt-4o", "unknown")] == first
    assert first[0] == first[1] == pytest.approx(1000 * 2.5e-06 + 200 * 1e-05) and first[2] is None


def test_models_remembered_for_pricing_stay_bounded_when_every_request_names_a_new_one(prices):
    for index in range(pricing._REMEMBERED_MODELS * 2 + 5):
        prices.cost_usd(f"made-up-{index}", 1, 1)
    assert len(prices._entries) <= pricing._REMEMBERED_MODELS
    assert prices.cost_usd("gpt-4o-mini", 1000, 200) == pytest.approx(1000 * 1.5e-07 + 200 * 6e-07)
