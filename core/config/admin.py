"""Config section for the admin API under /shadowtap/: [admin] token and feedback limits."""

from __future__ import annotations

import os
from dataclasses import dataclass

from shadowtap.core.config.checks import check_env_name, check_range


@dataclass(frozen=True)
class AdminConfig:
    token_env: str = "SHADOWTAP_ADMIN_TOKEN"   # env var holding the admin token; unset or empty: API disabled
    max_feedback_batch: int = 1000             # most feedback items in one POST /shadowtap/feedback

    def validate(self) -> None:
        check_env_name("[admin] token_env", self.token_env)
        check_range("[admin] max_feedback_batch", self.max_feedback_batch, 1, 100_000)

    def token(self) -> str | None:
        """The admin token from the environment; None turns the admin API off."""
        if not self.token_env:
            return None
        return os.environ.get(self.token_env) or None
