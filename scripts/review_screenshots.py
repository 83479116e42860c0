"""Take the review UI screenshots shown in docs/review.md (docs/images/review-*.png).

Builds the tests' review store (a drifting candidate, labels by two reviewers), serves
`shadowtap ui` on loopback, and drives Debian's chromium with Playwright:

    .venv/bin/python scripts/review_screenshots.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shadowtap.proxy.local_processes import free_port, stop_process, wait_until_serving  # noqa: E402
from tests.support.review_support import ADMIN_TOKEN, review_config, review_store  # noqa: E402

IMAGES = ROOT / "docs" / "images"


def main() -> int:
    binary = shutil.which("chromium")
    if binary is None:
        print("chromium is not installed (bash .ci/install-browser)", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as workdir:
        store_path = Path(workdir) / "captures.db"
        review_store(store_path)
        config = review_config(Path(workdir) / "shadowtap.toml", store_path)
        port = free_port()
        command = [sys.executable, "-m", "shadowtap.core.cli", "ui", "--config", str(config), "--port", str(port)]
        process = subprocess.Popen(command, env={**os.environ, "SHADOWTAP_TEST_REVIEW_TOKEN": ADMIN_TOKEN})
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(f"{url}/login", process, timeout_s=60)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=binary, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1200, "height": 800})
                for reviewer, outcomes in (("Ada", ("accepted", "rejected")), ("Bob", ("accepted", "edited"))):
                    page.goto(f"{url}/login")
                    page.fill("#reviewer", reviewer)
                    page.fill("#token", ADMIN_TOKEN)
                    page.click("#sign-in")
                    for exchange_id, outcome in zip(("x003", "x006"), outcomes, strict=True):
                        page.goto(f"{url}/exchanges/{exchange_id}")
                        page.select_option("#outcome", outcome)
                        page.click("#submit-review")
                        page.wait_for_selector(".flash")
                page.goto(url)
                page.screenshot(path=str(IMAGES / "review-overview.png"), full_page=True)
                page.goto(f"{url}/exchanges?candidate=drifty&disagreement=1")
                page.screenshot(path=str(IMAGES / "review-exchanges.png"))
                page.goto(f"{url}/exchanges/x003")
                page.screenshot(path=str(IMAGES / "review-exchange.png"))
                browser.close()
        finally:
            stop_process(process)
    print(f"wrote {', '.join(sorted(path.name for path in IMAGES.glob('review-*.png')))} in {IMAGES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
