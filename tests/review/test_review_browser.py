"""The review UI in real Chromium (Debian's, driven by Playwright) against `shadowtap ui` on
loopback: from the verdict to a candidate's disagreements, one exchange side by side, labels by
two reviewers moving trusted task completion and kappa, captured script that runs nothing, and a
form posted without its CSRF token refused. (Issue 16, acceptance.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shadowtap.proxy.local_processes import free_port, stop_process, wait_until_serving
from tests.support.review_support import ADMIN_TOKEN, review_config, review_store

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@pytest.fixture
def ui_url(tmp_path):
    store_path = tmp_path / "captures.db"
    review_store(store_path)
    config = review_config(tmp_path / "shadowtap.toml", store_path)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "shadowtap.core.cli", "ui", "--config", str(config), "--port", str(port)],
        env={**os.environ, "SHADOWTAP_TEST_REVIEW_TOKEN": ADMIN_TOKEN}, stderr=open(tmp_path / "ui.log", "wb"))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{url}/login", process, timeout_s=60)
        yield url
    finally:
        stop_process(process)


@pytest.fixture
def browser():
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("Debian's chromium is not installed (run .ci/install-browser): the review UI was not opened "
                    "in a browser")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=binary, args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


def sign_in(page, url: str, reviewer: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#reviewer", reviewer)
    page.fill("#token", ADMIN_TOKEN)
    page.click("#sign-in")
    page.wait_for_url(f"{url}/")


def label(page, url: str, exchange_id: str, outcome: str) -> None:
    page.goto(f"{url}/exchanges/{exchange_id}")
    page.select_option("#outcome", outcome)
    page.click("#submit-review")
    page.wait_for_selector(".flash")
    assert f"Saved: {outcome}." in page.inner_text(".flash")


def test_a_reviewer_goes_from_the_verdict_to_an_exchange_and_labels_it(ui_url, browser):
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(ui_url)
    verdicts = page.inner_text("#verdicts")
    assert "drifty" in verdicts and "NOT READY" in verdicts and "max_grounding_drop" in verdicts
    assert page.inner_text("#kappa") == "n/a"
    assert page.inner_text("#trusted-completion") == "n/a (no feedback)"

    page.click("text=disagreements")
    listed = page.locator("#exchanges tbody a").all_inner_texts()
    assert "x003" in listed and "x004" not in listed
    page.click("#exchanges >> text=x003")
    assert page.inner_text("#answer-primary pre").strip() == "The answer to question 3 is in the handbook."
    assert page.inner_text("#answer-drifty ins") == "handbook, chapter 3."
    assert page.inner_text("#answer-drifty del") == "handbook."

    sign_in(page, ui_url, "Ada")
    label(page, ui_url, "x003", "accepted")
    label(page, ui_url, "x006", "rejected")
    page.click("text=Sign out")
    sign_in(page, ui_url, "Bob")
    label(page, ui_url, "x003", "accepted")
    label(page, ui_url, "x006", "rejected")

    page.goto(ui_url)
    assert page.inner_text("#kappa") == "1.000"
    assert page.inner_text("#trusted-completion") != "n/a (no feedback)"
    feedback = page.goto(f"{ui_url}/exchanges/x006") and page.inner_text("#feedback")
    assert "Ada" in feedback and "Bob" in feedback
    assert dialogs == []


def test_captured_script_runs_nothing_and_a_form_without_its_token_is_refused(ui_url, browser):
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{ui_url}/exchanges/hostile")
    assert "<script>window.pwned = 1" in page.inner_text("#answer-primary")  # shown as text
    page.wait_for_timeout(500)
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert dialogs == []

    sign_in(page, ui_url, "Ada")
    forged = page.request.post(f"{ui_url}/exchanges/x003/review", form={"outcome": "accepted"})
    assert forged.status == 403
    page.goto(f"{ui_url}/exchanges/x003")
    assert "No feedback yet." in page.inner_text("#feedback")


def test_screenshots_for_the_docs_can_be_taken(ui_url, browser, tmp_path):
    """The docs' screenshots come from scripts/review_screenshots.py, which drives these same pages."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(ui_url)
    shot = Path(tmp_path / "overview.png")
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
