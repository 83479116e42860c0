"""POST a JSON event to [canary] webhook_url: once, with a short deadline, never raising.

The rollback is already written when this runs; a webhook that is down or slow costs a log line,
never the rollback or the next guard pass.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request

import orjson

TIMEOUT_S = 5.0
log = logging.getLogger("shadowtap.canary")


def post_event(url: str, event: dict, timeout_s: float = TIMEOUT_S) -> bool:
    """True when the webhook answered 2xx."""
    request = urllib.request.Request(url, data=orjson.dumps(event), method="POST",
                                     headers={"content-type": "application/json", "user-agent": "shadowtap-canary"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - an http(s) URL, checked at load
            return 200 <= response.status < 300
    except urllib.error.HTTPError as exc:
        log.warning("canary webhook answered %s", exc.code)
    except (OSError, ValueError) as exc:
        log.warning("canary webhook failed: %s", type(exc).__name__)
    return False
