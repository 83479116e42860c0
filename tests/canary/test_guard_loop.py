"""The guard loop: each guard fires only from min_samples and past its threshold, a red guard rolls
the canary back with the guard and its window recorded, and healthy canaries are left alone."""

import http.server
import threading

import orjson
import pytest
from click.testing import CliRunner

from shadowtap.core.cli import cli
from shadowtap.core.config import load_config
from shadowtap.core.store import Store
from shadowtap.core.store.canary_store import canary_events, read_canary_states, set_canary_share
from shadowtap.evaluators.canary.loop import GuardLoop
from shadowtap.evaluators.canary.webhook import post_event
from tests.canary.conftest import write_config
from tests.canary.traffic import GROUNDED, INVENTED, Traffic


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        set_canary_share(store, "small", 0.2, status="running", changed_by="ana", reason="go")
    return path


def guard_pass(tmp_path, canary: str = "", posts: list | None = None):
    config = load_config(write_config(tmp_path, canary))
    with Store.open(tmp_path / "s.db") as store:
        loop = GuardLoop(config, store, post=lambda url, event: posts.append((url, event)) or True)
        rollbacks = loop.run_once()
        return rollbacks, loop.last_results.get("small", []), read_canary_states(store)["small"]


def result(results, name, cohort=None):
    return next(r for r in results if r.name == name and r.cohort == cohort)


def test_a_healthy_canary_keeps_its_share(tmp_path, store_path):
    Traffic(store_path).canaried("small", 20)
    rollbacks, results, state = guard_pass(tmp_path)
    assert rollbacks == [] and not any(r.red for r in results)
    assert (state.status, state.share) == ("running", 0.2)
    assert result(results, "error_rate").value == 0.0 and result(results, "error_rate").samples == 20


def test_errors_below_min_samples_never_fire(tmp_path, store_path):
    Traffic(store_path).canaried("small", 4, fallback_reason="candidate_timeout")
    rollbacks, results, state = guard_pass(tmp_path)
    error_rate = result(results, "error_rate")
    assert (error_rate.value, error_rate.samples, error_rate.red) == (1.0, 4, False)
    assert rollbacks == [] and state.status == "running"


def test_an_error_rate_over_the_threshold_rolls_back_with_the_guard_and_its_window(tmp_path, store_path):
    traffic = Traffic(store_path)
    traffic.canaried("small", 8)
    traffic.canaried("small", 2, fallback_reason="candidate_error")
    posts: list = []
    rollbacks, results, state = guard_pass(tmp_path, "max_error_rate = 0.1", posts)
    assert [r.guard.name for r in rollbacks] == ["error_rate"]
    assert (state.share, state.status, state.guard, state.changed_by) == (0.0, "rolled_back", "error_rate", "guard")
    assert "error_rate = 0.200 against 0.1 over 10 samples" in state.reason
    with Store.open(store_path) as store:
        event = canary_events(store, "small")[-1]
    assert event["share_before"] == 0.2 and event["share_after"] == 0.0
    assert event["window"]["value"] == 0.2 and event["window"]["samples"] == 10
    assert event["window"]["served"] == 8 and event["window"]["fallbacks"] == 2
    assert posts == []  # no webhook configured


def test_contract_invalid_fallbacks_fire_their_own_guard(tmp_path, store_path):
    traffic = Traffic(store_path)
    traffic.canaried("small", 18)
    traffic.canaried("small", 2, fallback_reason="contract_invalid")
    rollbacks, results, _ = guard_pass(tmp_path, "max_fallback_rate = 1.0")
    assert result(results, "contract_invalid_rate").value == 0.1
    assert [r.guard.name for r in rollbacks] == ["contract_invalid_rate"]


def test_fallbacks_are_rated_per_risk_tier_and_per_task(tmp_path, store_path):
    traffic = Traffic(store_path)
    traffic.canaried("small", 10, task="chat", risk_tier="low")
    traffic.canaried("small", 5, task="refunds", risk_tier="low")
    traffic.canaried("small", 5, task="refunds", risk_tier="low", fallback_reason="stream_too_long")
    rollbacks, results, _ = guard_pass(tmp_path, "max_fallback_rate = 0.3")
    assert result(results, "fallback_rate", "task=chat").value == 0.0
    assert result(results, "fallback_rate", "task=refunds").value == 0.5
    assert result(results, "fallback_rate", "risk_tier=low").value == 0.25
    assert rollbacks[0].guard.name == "fallback_rate" and rollbacks[0].guard.cohort == "task=refunds"


def test_state_stale_fallbacks_count_against_no_candidate(tmp_path, store_path):
    traffic = Traffic(store_path)
    traffic.canaried("small", 10)
    traffic.canaried("small", 10, fallback_reason="state_stale")
    rollbacks, results, _ = guard_pass(tmp_path)
    assert result(results, "error_rate").samples == 10 and rollbacks == []


def test_with_two_canaries_a_fallback_counts_for_the_candidate_its_reason_names(tmp_path, store_path):
    with Store.open(store_path) as store:
        set_canary_share(store, "other", 0.1, status="running", changed_by="ana", reason="go")
    traffic = Traffic(store_path)
    traffic.canaried("small", 10)
    traffic.canaried("small", 10, fallback_reason="other:candidate_error")
    traffic.canaried("small", 10, fallback_reason="candidate_error")  # names no one: nobody's
    rollbacks, results, state = guard_pass(tmp_path)
    assert result(results, "error_rate").samples == 10 and state.status == "running"
    assert [r.candidate for r in rollbacks] == ["other"]


def test_fallbacks_from_before_the_canary_started_count_against_it_not(tmp_path, store_path):
    Traffic(store_path).canaried("small", 10, fallback_reason="candidate_error", age_s=100)  # started just now
    rollbacks, results, _ = guard_pass(tmp_path)
    assert result(results, "error_rate").samples == 0 and rollbacks == []


def test_traffic_older_than_the_window_is_left_out(tmp_path, store_path):
    Traffic(store_path).canaried("small", 10, fallback_reason="candidate_error", age_s=120)
    rollbacks, results, _ = guard_pass(tmp_path, "window_s = 60")
    assert result(results, "error_rate").samples == 0 and rollbacks == []


def test_a_grounding_drop_against_the_primary_on_the_same_requests_rolls_back(tmp_path, store_path):
    traffic = Traffic(store_path)
    traffic.canaried("small", 6, text=INVENTED, twin_text=GROUNDED)
    rollbacks, results, _ = guard_pass(tmp_path)
    drop = result(results, "grounding_drop")
    assert drop.samples == 6 and drop.value > 0.3
    assert "grounding_drop" in [r.name for r in rollbacks[0].red]


def test_equally_grounded_answers_leave_the_grounding_guard_green(tmp_path, store_path):
    Traffic(store_path).canaried("small", 6, text=GROUNDED, twin_text=GROUNDED)
    _, results, _ = guard_pass(tmp_path)
    drop = result(results, "grounding_drop")
    assert drop.value == 0.0 and not drop.red


def test_an_answer_is_scored_once_its_twin_arrives_unless_the_twin_is_long_overdue(tmp_path, store_path):
    traffic = Traffic(store_path)
    fresh = traffic.canaried("small", 5, text=INVENTED, twin_text=None)
    overdue = traffic.canaried("small", 5, text=INVENTED, twin_text=None, age_s=300)
    config = load_config(write_config(tmp_path))
    with Store.open(store_path) as store:
        loop = GuardLoop(config, store)
        loop.run_once()
        assert result(loop.last_results["small"], "grounding_drop").samples == 0
        for exchange_id in fresh + overdue:
            traffic._twin(store, exchange_id, GROUNDED)
        loop.run_once()
        drop = result(loop.last_results["small"], "grounding_drop")
    assert drop.samples == 5 and drop.red  # the fresh five only


def test_agreement_waits_for_a_noise_floor_then_fires_on_disagreement(tmp_path, store_path):
    traffic = Traffic(store_path)
    traffic.canaried("small", 6, text=INVENTED, twin_text=GROUNDED)
    _, results, _ = guard_pass(tmp_path, "max_grounding_drop = 1.0")
    waiting = result(results, "agreement_drop")
    assert waiting.value is None and "no noise floor" in waiting.note and not waiting.red
    traffic.primary(6, text=GROUNDED, twin_text=GROUNDED)
    rollbacks, results, _ = guard_pass(tmp_path, "max_grounding_drop = 1.0")
    drop = result(results, "agreement_drop")
    assert drop.value > 0.5 and drop.red and "noise floor 1.000 over 6 twins" in drop.note
    assert rollbacks[0].guard.name == "agreement_drop"


def test_feedback_drives_the_trusted_completion_guard(tmp_path, store_path):
    traffic = Traffic(store_path)
    traffic.feedback(traffic.primary(6), "accepted")
    candidate_ids = traffic.canaried("small", 6)
    traffic.feedback(candidate_ids[:3], "accepted")
    _, results, state = guard_pass(tmp_path)
    assert result(results, "trusted_completion_delta").note.endswith("waits for 5 on each side")
    assert state.status == "running"
    traffic.feedback(candidate_ids[3:], "rejected")
    rollbacks, results, state = guard_pass(tmp_path, "max_policy_violation_rate = 1.0")
    delta = result(results, "trusted_completion_delta")
    assert delta.value == -0.5 and delta.red
    assert state.guard == "trusted_completion_delta"


def test_feedback_drives_the_correction_burden_guard(tmp_path, store_path):
    traffic = Traffic(store_path)
    traffic.feedback(traffic.primary(5), "accepted")
    traffic.feedback(traffic.canaried("small", 5), "edited", edit_minutes=1, edited_text="Completely rewritten text.")
    rollbacks, results, _ = guard_pass(tmp_path, "min_trusted_completion_delta = -1.0")
    burden = result(results, "correction_burden_delta")
    assert burden.value > 0.5 and burden.red and rollbacks[0].guard.name == "correction_burden_delta"


def test_policy_violations_fire_per_cohort(tmp_path, store_path):
    traffic = Traffic(store_path)
    traffic.feedback(traffic.canaried("small", 5, task="legal"), "policy_violation")
    traffic.feedback(traffic.canaried("small", 5, task="chat"), "accepted")
    rollbacks, results, _ = guard_pass(tmp_path, "min_trusted_completion_delta = -1.0")
    assert result(results, "policy_violation_rate", "task=legal").value == 1.0
    assert result(results, "policy_violation_rate", "task=chat").value == 0.0
    assert rollbacks[0].guard.name == "policy_violation_rate"
    red_cohorts = {r.cohort for r in rollbacks[0].red}
    assert "task=legal" in red_cohorts and "task=chat" not in red_cohorts


def test_a_rolled_back_canary_is_not_evaluated_again(tmp_path, store_path):
    Traffic(store_path).canaried("small", 10, fallback_reason="candidate_error")
    first, _, _ = guard_pass(tmp_path)
    second, _, _ = guard_pass(tmp_path)
    assert len(first) == 1 and second == []
    with Store.open(store_path) as store:
        assert [e["changed_by"] for e in canary_events(store, "small")] == ["ana", "guard"]


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["content-length"]))
        self.received.append((self.headers["content-type"], orjson.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_an_automatic_rollback_posts_a_json_event_to_the_webhook(tmp_path, store_path):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        Traffic(store_path).canaried("small", 10, fallback_reason="candidate_timeout")
        config = load_config(write_config(tmp_path, f'webhook_url = "{url}"'))
        with Store.open(store_path) as store:
            # the real POST, with a deadline a loaded test machine cannot miss
            GuardLoop(config, store, post=lambda url, event: post_event(url, event, timeout_s=120)).run_once()
    finally:
        server.shutdown()
        server.server_close()
    [(content_type, event)] = _Hook.received
    assert content_type == "application/json"
    assert event["event"] == "canary_rollback" and event["candidate"] == "small" and event["guard"] == "error_rate"
    assert event["share_before"] == 0.2 and event["window"]["samples"] == 10


def test_a_webhook_that_is_down_costs_nothing_but_a_log_line(tmp_path, store_path, caplog):
    from tests.support.servers import free_port  # a closed port

    Traffic(store_path).canaried("small", 10, fallback_reason="candidate_timeout")
    config = load_config(write_config(tmp_path, f'webhook_url = "http://127.0.0.1:{free_port()}/hook"'))
    with Store.open(store_path) as store:
        rollbacks = GuardLoop(config, store).run_once()
        assert read_canary_states(store)["small"].status == "rolled_back"
    assert len(rollbacks) == 1 and "canary webhook failed" in caplog.text


def test_guard_once_prints_every_guard_and_rolls_back_what_is_red(tmp_path, store_path):
    Traffic(store_path).canaried("small", 10, fallback_reason="candidate_error")
    result_ = CliRunner().invoke(cli, ["canary", "guard", "--once", "--config", str(write_config(tmp_path))])
    assert result_.exit_code == 0, result_.output
    report = orjson.loads(result_.output)
    assert report["small"]["rolled_back_by"] == "error_rate"
    names = {guard["name"] for guard in report["small"]["guards"]}
    assert {"error_rate", "grounding_drop", "trusted_completion_delta"} <= names


def test_a_failed_pass_is_logged_and_the_store_opened_again_for_the_next(tmp_path, store_path, caplog):
    import threading as threads

    config = load_config(write_config(tmp_path, "guard_interval_s = 0.05"))
    broken = Store.open(store_path)
    broken.close()  # every read on it fails
    Traffic(store_path).canaried("small", 10, fallback_reason="candidate_error")
    stop = threads.Event()
    passes = iter([True, True, False])  # two passes, then stop
    loop = GuardLoop(config, broken, reopen=lambda: Store.open(store_path))
    loop.run(stop, should_continue=lambda: next(passes))
    assert "canary guard pass failed" in caplog.text
    with Store.open(store_path) as store:
        assert read_canary_states(store)["small"].status == "rolled_back"
    loop.store.close()


def test_the_guard_command_waits_for_a_store_that_cannot_be_opened_yet(caplog):
    import threading as threads

    from shadowtap.core.errors import StoreError
    from shadowtap.evaluators.canary.command import _open_when_possible

    attempts = []

    def open_store():
        attempts.append(1)
        if len(attempts) < 3:
            raise StoreError("cannot connect to the PostgreSQL store 'postgresql://db/x': refused")
        return "the store"

    assert _open_when_possible(open_store, threads.Event(), lambda: True, 0.01) == "the store"
    assert len(attempts) == 3 and caplog.text.count("cannot open the store yet") == 2
    stopped = threads.Event()
    stopped.set()
    assert _open_when_possible(open_store, stopped, lambda: True, 0.01) is None
