"""Who may review, and proof that a form was posted from the UI's own pages.

Reviewers sign in with the admin token (`[admin] token_env`, the feedback API's) and a name; the
session is a cookie holding the name, its expiry and an HMAC over both with a key made at start-up
(so sessions end with the process). Every form carries a CSRF field, an HMAC of a random per-browser
cookie: a page on another site can make a browser post, but cannot read that cookie to compute the
field. Cookies are HttpOnly and SameSite=Strict.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

SESSION_COOKIE = "shadowtap_review"
CSRF_COOKIE = "shadowtap_csrf"
SESSION_S = 12 * 3600
MAX_REVIEWER_LENGTH = 200


class ReviewAuth:
    def __init__(self, admin_token: str | None, key: bytes | None = None) -> None:
        self._token = admin_token
        self._key = key or secrets.token_bytes(32)

    @property
    def enabled(self) -> bool:
        """Reviewing needs an admin token; without one the UI is read-only."""
        return bool(self._token)

    def token_matches(self, given: str) -> bool:
        return bool(self._token) and hmac.compare_digest(given.encode(), (self._token or "").encode())

    def session_value(self, reviewer: str, now: float | None = None) -> str:
        expires = int((now or time.time()) + SESSION_S)
        name = base64.urlsafe_b64encode(reviewer.encode()).decode().rstrip("=")
        payload = f"{name}.{expires}"
        return f"{payload}.{self._sign('session', payload)}"

    def reviewer(self, session: str | None, now: float | None = None) -> str | None:
        """The signed-in reviewer's name, or None for a missing, forged or expired session."""
        if not session or not self.enabled:
            return None
        payload, _, signature = session.rpartition(".")
        if not hmac.compare_digest(signature, self._sign("session", payload)):
            return None
        name, _, expires = payload.partition(".")
        if not expires.isdigit() or int(expires) < (now or time.time()):
            return None
        try:
            return base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return None

    @staticmethod
    def new_csrf_cookie() -> str:
        return secrets.token_urlsafe(24)

    def csrf_field(self, cookie: str) -> str:
        return self._sign("csrf", cookie)

    def csrf_valid(self, cookie: str | None, field: str | None) -> bool:
        return bool(cookie) and bool(field) and hmac.compare_digest(field or "", self._sign("csrf", cookie or ""))

    def _sign(self, purpose: str, value: str) -> str:
        return hmac.new(self._key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()
