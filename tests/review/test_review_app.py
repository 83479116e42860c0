"""The review UI in process (Starlette's test client): the verdict first, the exchanges behind it,
one exchange side by side, and labelling as a signed-in reviewer, with CSRF, escaping and a
Content-Security-Policy that allows no script. (Issue 16, items 2 and 4.)"""

from __future__ import annotations

import hashlib
import re

import pytest
from starlette.testclient import TestClient

from shadowtap.core.cli_common import load_config_or_exit
from shadowtap.core.store import CaptureStore, Store
from shadowtap.evaluators.review.app import review_app
from shadowtap.evaluators.review.auth import CSRF_COOKIE, ReviewAuth
from tests.support.review_support import ADMIN_TOKEN, HOSTILE, review_config, review_store


@pytest.fixture
def store_and_config(tmp_path):
    store_path = tmp_path / "captures.db"
    review_store(store_path)
    config = load_config_or_exit(str(review_config(tmp_path / "shadowtap.toml", store_path)))
    store = Store.open(store_path)  # the test's own handle, to read what the UI stored
    yield store, config
    store.close()


def client_for(store_and_config, token: str | None = ADMIN_TOKEN) -> TestClient:
    store, config = store_and_config
    return TestClient(review_app(config, store.path, ReviewAuth(token)), follow_redirects=False)


def csrf_of(page_html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page_html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def sign_in(client: TestClient, reviewer: str) -> None:
    login_page = client.get("/login")
    answer = client.post("/login", data={"csrf": csrf_of(login_page.text), "reviewer": reviewer,
                                         "token": ADMIN_TOKEN, "next": "/"})
    assert answer.status_code == 303, answer.text


def test_the_overview_opens_with_the_gates_verdict_and_names_the_failing_check(store_and_config):
    page = client_for(store_and_config).get("/")
    assert page.status_code == 200
    verdicts = page.text[page.text.index('id="verdicts"'):page.text.index("</table>")]
    assert "drifty" in verdicts and "NOT READY" in verdicts
    assert "max_grounding_drop" in verdicts
    assert "/exchanges?candidate=drifty&amp;disagreement=1" in verdicts


def test_the_exchange_list_filters_to_a_candidates_disagreements(store_and_config):
    page = client_for(store_and_config).get("/exchanges", params={"candidate": "drifty", "disagreement": "1"})
    listed = set(re.findall(r'href="/exchanges/([^"?]+)"', page.text))
    assert listed == {f"x{index:03d}" for index in range(0, 30, 3)} | {"hostile"}


def test_the_exchange_list_sorts_by_a_score_and_pages(store_and_config):
    client = client_for(store_and_config)
    first = client.get("/exchanges", params={"candidate": "drifty", "evaluator": "grounding", "sort": "score_low"})
    values = [float(value) for value in re.findall(r"<td>(\d\.\d{3}) ", first.text)]
    assert len(values) == 30 and values == sorted(values)
    assert "next page" not in first.text  # 30 fit on one page of 50
    bad = client.get("/exchanges", params={"evaluator": "grounding", "min_score": "low"})
    assert "min score &#39;low&#39; is not a number" in bad.text


def test_an_exchange_page_shows_both_answers_with_a_word_diff_and_the_scores(store_and_config):
    page = client_for(store_and_config).get("/exchanges/x003")
    assert page.status_code == 200
    assert "Question number 3?" in page.text
    assert "The answer to question 3 is in the handbook." in page.text
    assert "in the <del>handbook.</del><ins>handbook, chapter 3.</ins>" in page.text
    scores = page.text[page.text.index('id="scores"'):]
    assert "grounding" in scores and "disagree" in scores


def test_an_exchange_a_canary_answered_says_whose_answer_the_app_received(store_and_config):
    store, _ = store_and_config
    writable = CaptureStore.open(store.path)
    writable.db.execute("update exchanges set served_by = 'drifty' where id = 'x004'")
    writable.db.execute("update exchanges set served_by = 'primary', fallback_reason = 'contract_invalid' "
                        "where id = 'x005'")
    writable.db.conn.commit()
    writable.close()
    client = client_for(store_and_config)
    served = client.get("/exchanges/x004").text
    assert "A canary answered this request" in served and "<h3>drifty, as served live" in served
    fallback = client.get("/exchanges/x005").text
    assert "the primary answered it instead of the\ncandidate (contract_invalid)" in fallback
    assert "<h3>primary" in fallback
    assert 'id="served-by"' not in client.get("/exchanges/x003").text


def test_captured_script_is_escaped_and_the_policy_allows_none(store_and_config):
    page = client_for(store_and_config).get("/exchanges/hostile")
    assert "<script>" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;window.pwned = 1" in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert HOSTILE not in client_for(store_and_config).get("/exchanges", params={"search": "pwned"}).text


def test_a_review_is_stored_as_feedback_by_the_signed_in_reviewer(store_and_config):
    store, _ = store_and_config
    client = client_for(store_and_config)
    sign_in(client, "Ada")
    page = client.get("/exchanges/x003")
    assert "Save as Ada" in page.text
    answer = client.post("/exchanges/x003/review", data={
        "csrf": csrf_of(page.text), "outcome": "edited", "edited_text": "The answer is in chapter 3.",
        "comment": "cite the chapter"})
    assert answer.status_code == 303
    (row,) = store.review.feedback("x003")
    assert (row["reviewer"], row["outcome"], row["source"], row["comment"]) == ("Ada", "edited", "review",
                                                                               "cite the chapter")
    assert row["edit_ratio"] > 0
    assert "Saved: edited." in client.get(answer.headers["location"]).text


def test_a_form_posted_without_its_csrf_token_is_refused(store_and_config):
    store, _ = store_and_config
    client = client_for(store_and_config)
    sign_in(client, "Ada")
    assert client.post("/exchanges/x003/review", data={"outcome": "accepted"}).status_code == 403
    assert client.post("/exchanges/x003/review", data={"outcome": "accepted", "csrf": "0" * 64}).status_code == 403
    other_browser = client_for(store_and_config)  # its own CSRF cookie: a token from another page does not fit
    other_browser.get("/")
    token_from_first = csrf_of(client.get("/exchanges/x003").text)
    assert other_browser.post("/login", data={"csrf": token_from_first, "reviewer": "Eve",
                                              "token": ADMIN_TOKEN}).status_code == 403
    assert store.review.feedback("x003") == []


def test_signing_in_needs_the_admin_token_and_never_redirects_off_site(store_and_config):
    client = client_for(store_and_config)
    csrf = csrf_of(client.get("/login").text)
    wrong = client.post("/login", data={"csrf": csrf, "reviewer": "Eve", "token": "guess"})
    assert wrong.status_code == 401 and "not the admin token" in wrong.text
    assert ADMIN_TOKEN not in wrong.text
    right = client.post("/login", data={"csrf": csrf, "reviewer": "Ada", "token": ADMIN_TOKEN,
                                        "next": "//evil.example/"})
    assert right.headers["location"] == "/"
    assert client.cookies.get(CSRF_COOKIE)


def test_without_an_admin_token_the_ui_is_read_only(store_and_config):
    client = client_for(store_and_config, token=None)
    assert "read-only" in client.get("/").text
    assert 'name="token"' not in client.get("/login").text  # no sign-in form at all
    refused = client.post("/login", data={"reviewer": "Ada", "token": ""})
    assert refused.status_code == 403 and "shadowtap_review" not in refused.headers.get("set-cookie", "")
    assert "Save as" not in client.get("/exchanges/x003").text


def test_a_reviewer_adds_an_exchange_to_a_golden_set_with_their_own_reference(store_and_config):
    store, _ = store_and_config
    client = client_for(store_and_config)
    sign_in(client, "Ada")
    csrf = csrf_of(client.get("/exchanges/x003").text)
    primary_answer = "The answer to question 3 is in the handbook."
    kept = client.post("/exchanges/x003/golden", data={"csrf": csrf, "set_name": "handbook",
                                                       "reference_text": primary_answer})
    assert kept.status_code == 303 and "version+1" in kept.headers["location"]
    edited = client.post("/exchanges/x006/golden", data={"csrf": csrf, "set_name": "handbook",
                                                         "reference_text": "Chapter 6 of the handbook."})
    assert edited.status_code == 303
    items = {item.exchange_id: item for item in store.golden.items("handbook@2")}
    assert items["x003"].reference_source == "primary"
    assert items["x006"].reference_text == "Chapter 6 of the handbook."
    assert items["x006"].reference_source == "review:Ada"
    assert client.post("/exchanges/x009/golden", data={"set_name": "handbook"}).status_code == 403


def make_queue(client: TestClient, guideline, reviewers: int = 2) -> str:
    listing = client.get("/exchanges", params={"candidate": "drifty", "disagreement": "1", "sort": "oldest"})
    assert 'id="make-queue"' in listing.text
    made = client.post("/queues", data={
        "csrf": csrf_of(listing.text), "name": "drifty disagreements",
        "filter": "candidate=drifty&disagreement=1&sort=oldest",
        "reviewers_per_item": str(reviewers), "max_items": "50", "category": "task", "guideline_path": str(guideline)})
    assert made.status_code == 303, made.text
    return made.headers["location"].rsplit("/", 1)[1]


def label_next(client: TestClient, queue_id: str, outcome: str) -> str:
    """Follow 'next item', label it; the exchange id labelled."""
    to_item = client.get(f"/queues/{queue_id}/next")
    assert to_item.status_code == 303 and "/exchanges/" in to_item.headers["location"], to_item.headers
    page = client.get(to_item.headers["location"])
    assert 'id="queue-banner"' in page.text and f'name="queue_id" value="{queue_id}"' in page.text
    exchange_id = to_item.headers["location"].split("/exchanges/")[1].split("?")[0]
    saved = client.post(f"/exchanges/{exchange_id}/review",
                        data={"csrf": csrf_of(page.text), "outcome": outcome, "queue_id": queue_id})
    assert saved.headers["location"].startswith(f"/queues/{queue_id}/next")
    return exchange_id


def test_a_review_queue_hands_each_item_to_n_reviewers_and_tracks_their_agreement(store_and_config, tmp_path):
    guideline = tmp_path / "guideline.md"
    guideline.write_text("Accept an answer only when it cites the chapter.\n")
    ada, bob = client_for(store_and_config), client_for(store_and_config)
    sign_in(ada, "Ada")
    sign_in(bob, "Bob")
    queue_id = make_queue(ada, guideline)

    first, second = label_next(ada, queue_id, "accepted"), label_next(ada, queue_id, "rejected")
    assert (first, second) == ("x000", "x003")  # the filter's order, and never the same item twice
    assert [label_next(bob, queue_id, outcome) for outcome in ("accepted", "rejected")] == ["x000", "x003"]
    third_for_ada = ada.get(f"/queues/{queue_id}/next").headers["location"]
    assert third_for_ada.startswith("/exchanges/x006")

    page = " ".join(ada.get(f"/queues/{queue_id}").text.split())
    assert "4 of 22 labels given; 2 of 11 exchanges fully labelled; reviewers: Ada, Bob." in page
    agreement = page[page.index('id="agreement"'):]
    assert "<td>overall</td><td>2</td> <td>1.000 (cohen)</td>" in agreement
    assert "<td>qa</td>" in agreement and "<td>chat</td>" in agreement  # x000 is task qa, x003 chat
    assert hashlib.sha256(guideline.read_bytes()).hexdigest()[:12] in page


def test_a_queue_with_an_unreadable_guideline_is_refused_with_the_reason(store_and_config, tmp_path):
    client = client_for(store_and_config)
    sign_in(client, "Ada")
    listing = client.get("/exchanges")
    refused = client.post("/queues", data={"csrf": csrf_of(listing.text), "name": "q", "filter": "",
                                           "reviewers_per_item": "2", "category": "task",
                                           "guideline_path": str(tmp_path / "missing.md")})
    assert refused.status_code == 422 and "cannot read the guideline" in refused.text
    assert "No queue yet" in client.get("/queues").text


def test_the_overview_names_each_candidates_worst_categories_with_a_link_to_them(store_and_config):
    page = client_for(store_and_config).get("/").text
    worst = page[page.index('id="worst-categories"'):]
    worst = worst[:worst.index("</table>")]
    assert "task=qa" in worst and "task=chat" in worst
    assert "/exchanges?candidate=drifty&amp;evaluator=agreement&amp;sort=score_low&amp;task=qa" in worst


def test_each_failing_check_of_the_overview_links_to_the_candidates_exchanges_behind_it(store_and_config):
    client = client_for(store_and_config)
    page = client.get("/").text
    verdicts = page[page.index('id="verdicts"'):page.index("</table>")]
    link = "/exchanges?candidate=drifty&evaluator=grounding&sort=score_low&source=drifty"
    assert f'<a href="{link.replace("&", "&amp;")}">max_grounding_drop' in verdicts
    listed = client.get(link).text
    values = [float(value) for value in re.findall(r"<td>(\d\.\d{3}) ", listed)]
    assert len(values) == 30 and values == sorted(values)   # drifty's own grounding, lowest first


def test_the_exchange_list_keeps_only_calls_that_failed_for_a_candidate_when_asked(store_and_config):
    store, _ = store_and_config
    writable = CaptureStore.open(store.path)
    writable.db.execute("update shadows set outcome = 'timeout', response_text = null where id = 'x004:drifty'")
    writable.db.execute("update shadows set outcome = 'error', response_text = null where id = 'x007:drifty'")
    writable.db.conn.commit()
    writable.close()
    page = client_for(store_and_config).get("/exchanges", params={"candidate": "drifty", "failed": "1"})
    assert set(re.findall(r'href="/exchanges/([^"?]+)"', page.text)) == {"x004", "x007"}
