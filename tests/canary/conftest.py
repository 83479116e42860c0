"""A config with canary candidates and its temp store, for the canary CLI and guard tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.postgres import pg_schema, pg_url  # noqa: F401 - fixtures

CONFIG = """
[primary]
base_url = "http://127.0.0.1:9000/v1"

[store]
path = "{store}"

[canary]
min_samples = 5
{canary}

[[candidates]]
name = "small"
model = "openai/small"
api_base = "http://127.0.0.1:9100/v1"

[candidates.canary]
max_share = 0.3

[[candidates]]
name = "shadow-only"
model = "openai/other"
"""


def write_config(tmp_path: Path, canary: str = "") -> Path:
    path = tmp_path / "shadowtap.toml"
    path.write_text(CONFIG.format(store=tmp_path / "s.db", canary=canary))
    return path


@pytest.fixture
def config_path(tmp_path) -> Path:
    from shadowtap.core.store import Store

    Store.open(tmp_path / "s.db").close()
    return write_config(tmp_path)
