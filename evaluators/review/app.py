"""The review UI's Starlette app: overview, exchange list, exchange page, sign-in and labelling.

Read-only over the store except for one action, a review, which is stored as feedback through
the same FeedbackStore the feedback API uses (source `review`), so the report's outcome figures
(trusted task completion, correction burden, evaluator validity, kappa) move at once.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from shadowtap.core.config import ShadowtapConfig as Config
from shadowtap.core.errors import ConfigError, FeedbackError, SelectionError
from shadowtap.core.feedback_items import OUTCOMES
from shadowtap.core.redaction import Redactor
from shadowtap.core.store import Store
from shadowtap.core.store.feedback_store import FeedbackStore
from shadowtap.core.store.review_queues import CATEGORIES
from shadowtap.core.store.review_reads import SCORE_SORTS, SORTS, ReviewFilter
from shadowtap.evaluators.review.auth import CSRF_COOKIE, MAX_REVIEWER_LENGTH, SESSION_COOKIE, SESSION_S, ReviewAuth
from shadowtap.evaluators.review.overview import Overview, build_overview
from shadowtap.evaluators.review.pages import CONTENT_SECURITY_POLICY, render
from shadowtap.evaluators.review.queues import guideline_version, queue_progress
from shadowtap.evaluators.review.word_diff import word_diff
from shadowtap.replay.golden import add_items, items_from_exchanges

PAGE_SIZE = 50
CSRF_REFUSED = "the form is missing its CSRF token or it does not match: reload the page and try again"
MAX_QUEUE_ITEMS = 1000
OVERVIEW_TTL_S = 15.0
EVALUATORS = ("agreement", "grounding", "faithfulness", "freshness", "contract", "verbosity", "refusal",
              "latency_delta", "cost_delta")


@dataclass
class _CachedOverview:
    overview: Overview | None = None
    at: float = 0.0


def review_app(config: Config, store_target: str, auth: ReviewAuth, *,
               clock: Callable[[], float] = time.monotonic) -> Starlette:
    """The app over the store at `store_target` (a SQLite path or a postgresql:// URL), opened on
    first use in the thread serving requests (uvicorn's event loop) and closed when it stops."""
    redactor = Redactor.from_rules(config.redaction)
    cached = _CachedOverview()
    candidates = [candidate.name for candidate in config.candidates]
    opened: dict[int, Store] = {}  # by thread: a SQLite connection stays in the thread that opened it

    def store_now() -> Store:
        thread = threading.get_ident()
        if thread not in opened:
            opened[thread] = Store.open(store_target)
        return opened[thread]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        for store in opened.values():
            store.close()
        opened.clear()

    def page(request: Request, template: str, status: int = 200, **values) -> Response:
        cookie = request.cookies.get(CSRF_COOKIE) or auth.new_csrf_cookie()
        reviewer = auth.reviewer(request.cookies.get(SESSION_COOKIE))
        body = render(template, reviewer=reviewer, review_enabled=auth.enabled, csrf=auth.csrf_field(cookie),
                      flash=request.query_params.get("flash"), **values)
        response = HTMLResponse(body, status_code=status, headers=_SECURITY_HEADERS)
        if CSRF_COOKIE not in request.cookies:
            response.set_cookie(CSRF_COOKIE, cookie, httponly=True, samesite="strict")
        return response

    async def signed_in_form(request: Request, action: str) -> tuple[FormData, str, Response | None]:
        """A posted form with its CSRF token checked and the signed-in reviewer, or the refusal."""
        form = await request.form()
        if not auth.csrf_valid(request.cookies.get(CSRF_COOKIE), _text(form.get("csrf"))):
            return form, "", _refused(CSRF_REFUSED)
        reviewer = auth.reviewer(request.cookies.get(SESSION_COOKIE))
        if reviewer is None:
            return form, "", _refused(f"sign in to {action}", status=401)
        return form, reviewer, None

    async def overview(request: Request) -> Response:
        if cached.overview is None or clock() - cached.at > OVERVIEW_TTL_S:
            cached.overview, cached.at = build_overview(config, store_now()), clock()
        return page(request, "overview", **cached.overview.values())

    async def exchanges(request: Request) -> Response:
        chosen, error = _filter_from(request.query_params)
        sort = request.query_params.get("sort", "newest")
        offset = _int(request.query_params.get("offset"), 0)
        result = store_now().review.exchanges(chosen, sort=sort, offset=offset, limit=PAGE_SIZE)
        return page(request, "exchanges", chosen=chosen, error=error, page=result, sort=sort,
                    sorts=[*SORTS, *SCORE_SORTS], candidates=candidates, evaluators=EVALUATORS,
                    outcomes=OUTCOMES,
                    filter_query=str(request.query_params), categories=CATEGORIES,
                    next_url=_page_url(request, offset + PAGE_SIZE),
                    previous_url=_page_url(request, offset - PAGE_SIZE))

    async def exchange(request: Request) -> Response:
        exchange_id = request.path_params["exchange_id"]
        row = store_now().review.exchange(exchange_id)
        if row is None:
            return page(request, "login", status=404, error=f"No captured exchange {exchange_id!r}.", next="/")
        shadows = [{**shadow, "diff": word_diff(row.get("response_text"), shadow.get("response_text"))}
                   for shadow in store_now().review.shadows(exchange_id) if not shadow.get("is_twin")]
        scores = [{**score, "details": _pretty(score.get("details"))}
                  for score in store_now().review.scores(exchange_id)]
        queue_id = request.query_params.get("queue")
        queue = store_now().queues.get(queue_id) if queue_id else None
        position = store_now().queues.position(queue["id"], exchange_id) if queue else None
        return page(request, "exchange", exchange=row, messages=_messages(row.get("request_json")),
                    queue=queue if position is not None else None, queue_position=position,
                    request_json=_pretty(row.get("request_json")) or row.get("request_raw") or "",
                    contexts=_contexts(scores), shadows=shadows, scores=scores,
                    replays=store_now().review.replay_results(exchange_id),
                    feedback=store_now().review.feedback(exchange_id),
                    outcomes=OUTCOMES)

    async def review(request: Request) -> Response:
        form, reviewer, refusal = await signed_in_form(request, "review")
        if refusal is not None:
            return refusal
        exchange_id = request.path_params["exchange_id"]
        item = {"exchange_id": exchange_id, "outcome": _text(form.get("outcome")), "reviewer": reviewer}
        for field in ("edited_text", "label", "comment"):
            value = _text(form.get(field)).strip()
            if value:
                item[field] = value
        try:
            (stored,) = FeedbackStore(store_now().captures, redactor).record([item], source="review")
        except FeedbackError as exc:
            return _refused(f"not saved: {exc}", status=422)
        cached.overview = None  # the outcome figures changed
        queue = store_now().queues.get(_text(form.get("queue_id"))) if form.get("queue_id") else None
        if queue is not None and store_now().queues.position(queue["id"], exchange_id) is not None:
            store_now().queues.record_label(queue["id"], exchange_id, reviewer, stored.feedback_id,
                                            queue["guideline_hash"])
            saved = urlencode({"flash": f"Saved: {item['outcome']}. Next item of {queue['name']}:"})
            return RedirectResponse(f"/queues/{queue['id']}/next?{saved}", status_code=303)
        saved = urlencode({"flash": f"Saved: {item['outcome']}."})
        return RedirectResponse(f"/exchanges/{exchange_id}?{saved}", status_code=303)

    async def add_to_golden(request: Request) -> Response:
        form, reviewer, refusal = await signed_in_form(request, "build golden sets")
        if refusal is not None:
            return refusal
        exchange_id = request.path_params["exchange_id"]
        name = _text(form.get("set_name")).strip()
        row = store_now().review.exchange(exchange_id)
        if row is None or not name or len(name) > 200:
            return _refused("give a set name (up to 200 characters) for a captured exchange", status=422)
        reference = _text(form.get("reference_text"))
        edited = reference.strip() != (row.get("response_text") or "").strip()
        try:
            items = items_from_exchanges([row], reference_text=redactor.redact_text(reference) if edited else None,
                                         reviewer=reviewer)
            version = add_items(store_now().golden, name, items, created_by=reviewer)
        except SelectionError as exc:
            return _refused(f"not added: {exc}", status=422)
        added = urlencode({"flash": f"Added to golden set {name} (version {version['version']})."})
        return RedirectResponse(f"/exchanges/{exchange_id}?{added}", status_code=303)

    async def queues(request: Request) -> Response:
        if request.method == "GET":
            listed = store_now().queues.queues()
            return page(request, "queues", queues=listed, error=None)
        form, reviewer, refusal = await signed_in_form(request, "build review queues")
        if refusal is not None:
            return refusal
        name = _text(form.get("name")).strip()
        filter_query = _text(form.get("filter"))
        chosen, error = _filter_from(dict(parse_qsl(filter_query)))
        reviewers_per_item = _int(_text(form.get("reviewers_per_item")), 2)
        max_items = min(_int(_text(form.get("max_items")), 50), MAX_QUEUE_ITEMS)
        category = _text(form.get("category")) or "task"
        guideline = _text(form.get("guideline_path")).strip() or None
        try:
            if not name or error or reviewers_per_item < 1 or category not in CATEGORIES:
                raise ConfigError(error or "give the queue a name, one or more reviewers per item, and a category")
            version = guideline_version(guideline)
        except ConfigError as exc:
            return page(request, "queues", status=422, queues=store_now().queues.queues(), error=str(exc))
        sort = dict(parse_qsl(filter_query)).get("sort", "newest")
        rows = store_now().review.exchanges(chosen, sort=sort, limit=max_items).rows
        queue = store_now().queues.create(
            name, filter_json=orjson.dumps({"filter": filter_query, "max_items": max_items}).decode(),
            exchange_ids=[row["id"] for row in rows], reviewers_per_item=reviewers_per_item,
            guideline_path=guideline, guideline_hash=version, category=category, created_by=reviewer)
        return RedirectResponse(f"/queues/{queue['id']}", status_code=303)

    async def queue(request: Request) -> Response:
        found = store_now().queues.get(request.path_params["queue_id"])
        if found is None:
            return page(request, "queues", status=404, queues=store_now().queues.queues(),
                        error=f"No review queue {request.path_params['queue_id']!r}.")
        return page(request, "queue", queue=found, progress=queue_progress(store_now().queues, found))

    async def next_in_queue(request: Request) -> Response:
        queue_id = request.path_params["queue_id"]
        reviewer = auth.reviewer(request.cookies.get(SESSION_COOKIE))
        if reviewer is None:
            return RedirectResponse(f"/login?next=/queues/{queue_id}/next", status_code=303)
        exchange_id = store_now().queues.next_item(queue_id, reviewer)
        flash = request.query_params.get("flash", "")
        if exchange_id is None:
            done = urlencode({"flash": f"{flash} Nothing left in this queue for you.".strip()})
            return RedirectResponse(f"/queues/{queue_id}?{done}", status_code=303)
        target = {"queue": queue_id, **({"flash": flash} if flash else {})}
        return RedirectResponse(f"/exchanges/{exchange_id}?{urlencode(target)}", status_code=303)

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return page(request, "login", error=None, next=_safe_next(request.query_params.get("next")))
        form = await request.form()
        if not auth.csrf_valid(request.cookies.get(CSRF_COOKIE), _text(form.get("csrf"))):
            return _refused(CSRF_REFUSED)
        reviewer = _text(form.get("reviewer")).strip()
        if not reviewer or len(reviewer) > MAX_REVIEWER_LENGTH:
            return page(request, "login", status=400, error="Give your name (up to 200 characters).",
                        next=_safe_next(_text(form.get("next"))))
        if not auth.token_matches(_text(form.get("token"))):
            return page(request, "login", status=401, error="That is not the admin token.",
                        next=_safe_next(_text(form.get("next"))))
        response = RedirectResponse(_safe_next(_text(form.get("next"))), status_code=303)
        response.set_cookie(SESSION_COOKIE, auth.session_value(reviewer), max_age=SESSION_S, httponly=True,
                            samesite="strict")
        return response

    async def logout(request: Request) -> Response:
        form = await request.form()
        if not auth.csrf_valid(request.cookies.get(CSRF_COOKIE), _text(form.get("csrf"))):
            return _refused(CSRF_REFUSED)
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    return Starlette(routes=[
        Route("/", overview), Route("/exchanges", exchanges), Route("/exchanges/{exchange_id:str}", exchange),
        Route("/exchanges/{exchange_id:str}/review", review, methods=["POST"]),
        Route("/exchanges/{exchange_id:str}/golden", add_to_golden, methods=["POST"]),
        Route("/queues", queues, methods=["GET", "POST"]), Route("/queues/{queue_id:str}", queue),
        Route("/queues/{queue_id:str}/next", next_in_queue),
        Route("/login", login, methods=["GET", "POST"]), Route("/logout", logout, methods=["POST"]),
    ], lifespan=lifespan)


_SECURITY_HEADERS = {"content-security-policy": CONTENT_SECURITY_POLICY, "x-content-type-options": "nosniff",
                     "referrer-policy": "no-referrer", "x-frame-options": "DENY", "cache-control": "no-store"}


def _refused(message: str, status: int = 403) -> Response:
    return Response(f"shadowtap review: {message}\n", status_code=status, media_type="text/plain",
                    headers=_SECURITY_HEADERS)


def _filter_from(params: Mapping[str, str]) -> tuple[ReviewFilter, str | None]:
    error = None
    scores: dict[str, float | None] = {}
    for name in ("min_score", "max_score"):
        text = params.get(name, "").strip()
        try:
            scores[name] = float(text) if text else None
        except ValueError:
            scores[name], error = None, f"{name.replace('_', ' ')} {text!r} is not a number; it was ignored"
    evaluator = params.get("evaluator") or None
    return ReviewFilter(
        candidate=params.get("candidate") or None, evaluator=evaluator if evaluator in EVALUATORS else None,
        source=params.get("source") or None, disagreement=params.get("disagreement") == "1",
        failed=params.get("failed") == "1",
        outcome=params.get("outcome") or None, tag=params.get("tag") or None, task=params.get("task") or None,
        risk_tier=params.get("risk_tier") or None, endpoint=params.get("endpoint") or None,
        since=params.get("since") or None, until=params.get("until") or None, search=params.get("search") or None,
        **scores), error


def _page_url(request: Request, offset: int) -> str:
    params = {key: value for key, value in request.query_params.items() if key != "offset"}
    if offset > 0:
        params["offset"] = str(offset)
    return "/exchanges?" + urlencode(params)


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an absolute URL a crafted link could send a reviewer to."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _int(text: str | None, default: int) -> int:
    try:
        return max(int(text or default), 0)
    except ValueError:
        return default


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _pretty(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return orjson.dumps(orjson.loads(text), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return text


def _messages(request_json: str | None) -> list[dict]:
    """Role and text of each chat-style message (Chat Completions, Anthropic Messages, Responses
    input), for reading; the whole request is shown below as captured."""
    try:
        request = orjson.loads(request_json or "null")
    except orjson.JSONDecodeError:
        return []
    if not isinstance(request, dict):
        return []
    shown: list[dict] = []
    if isinstance(request.get("system"), str | list):
        shown.append({"role": "system", "text": _content_text(request["system"])})
    if isinstance(request.get("instructions"), str):
        shown.append({"role": "instructions", "text": request["instructions"]})
    items = request.get("messages") if isinstance(request.get("messages"), list) else request.get("input")
    if isinstance(items, str):
        return [*shown, {"role": "user", "text": items}]
    for message in items if isinstance(items, list) else []:
        if isinstance(message, dict):
            shown.append({"role": str(message.get("role") or message.get("type") or "?"),
                          "text": _content_text(message.get("content"))})
    return shown


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                text = part.get("text") if isinstance(part.get("text"), str) else None
                parts.append(text if text is not None else f"[{part.get('type', 'part')}]")
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    return "" if content is None else orjson.dumps(content).decode()


def _contexts(scores: list[dict]) -> str | None:
    """The freshness score's details: each retrieved context with its age, version and label."""
    for score in scores:
        if score["evaluator"] == "freshness" and score["source"] == "primary" and score.get("details"):
            return score["details"]
    return None
