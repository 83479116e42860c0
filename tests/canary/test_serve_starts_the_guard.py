"""`shadowtap serve` runs the guard loop as a child when a candidate has a canary table: a canary
whose candidate errors is rolled back while the proxy serves, and stopping the proxy stops it."""

import time
from pathlib import Path

import httpx

from shadowtap.core.store import Store
from shadowtap.core.store.canary_store import read_canary_states, set_canary_share
from tests.canary.traffic import Traffic

CANARY = """
[canary]
guard_interval_s = 0.2
min_samples = 3

[[candidates]]
name = "small"
model = "openai/sim"
api_base = "{api_base}"
enabled = false
canary = {{ max_share = 0.5 }}
"""


def children(pid: int) -> dict[int, str]:
    """A process's children (Linux /proc): pid -> command line."""
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        pids = [int(child) for child in listing.read().split()]
    commands = {}
    for child in pids:
        with open(f"/proc/{child}/cmdline", "rb") as cmdline:
            commands[child] = cmdline.read().replace(b"\0", b" ").decode()
    return commands


def is_guard(command: str) -> bool:
    return " canary guard " in f" {command} "


def wait_for(condition, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_serve_runs_the_guard_loop_that_rolls_back_a_failing_canary(proxy_factory, simulator):
    extra = CANARY.replace("enabled = false", "enabled = true").format(api_base=simulator.base_url)
    proxy = proxy_factory(simulator.base_url, extra_config=extra)
    assert httpx.get(f"{proxy.url}/healthz").status_code == 200
    # serve starts the guard before it binds its port: it is there once the proxy answers
    [guard_pid] = [pid for pid, command in children(proxy.process.pid).items() if is_guard(command)]
    with Store.open(proxy.store_path) as store:
        set_canary_share(store, "small", 0.2, status="running", changed_by="test", reason="go")
    Traffic(proxy.store_path).canaried("small", 5, fallback_reason="candidate_error")

    def rolled_back() -> bool:
        with Store.open(proxy.store_path) as store:
            return read_canary_states(store)["small"].status == "rolled_back"

    assert wait_for(rolled_back), proxy.log_text()[-2000:]
    with Store.open(proxy.store_path) as store:
        state = read_canary_states(store)["small"]
    assert (state.guard, state.changed_by, state.share) == ("error_rate", "guard", 0.0)
    assert proxy.stop() == 0
    assert not Path(f"/proc/{guard_pid}").exists()  # stopped and reaped with the proxy


def test_serve_without_an_enabled_canary_candidate_starts_no_guard_loop(proxy_factory, simulator):
    proxy = proxy_factory(simulator.base_url, extra_config=CANARY.format(api_base=simulator.base_url))
    assert httpx.get(f"{proxy.url}/healthz").status_code == 200
    assert not any(is_guard(command) for command in children(proxy.process.pid).values())


def test_feedback_posted_through_the_api_drives_the_trusted_completion_rollback(proxy_factory, simulator):
    token = "adm-canary-test-token"
    extra = CANARY.replace("enabled = false", "enabled = true").format(api_base=simulator.base_url)
    proxy = proxy_factory(simulator.base_url, extra_config=extra, env={"SHADOWTAP_ADMIN_TOKEN": token})
    with Store.open(proxy.store_path) as store:
        set_canary_share(store, "small", 0.2, status="running", changed_by="test", reason="go")
    traffic = Traffic(proxy.store_path)
    primary_ids, candidate_ids = traffic.primary(4), traffic.canaried("small", 4)
    feedback = ([{"exchange_id": i, "outcome": "accepted"} for i in primary_ids]
                + [{"exchange_id": i, "outcome": "rejected"} for i in candidate_ids])
    response = httpx.post(f"{proxy.url}/shadowtap/feedback", json=feedback,
                          headers={"authorization": f"Bearer {token}"})
    assert response.status_code < 300, response.text

    def rolled_back() -> bool:
        with Store.open(proxy.store_path) as store:
            return read_canary_states(store)["small"].status == "rolled_back"

    assert wait_for(rolled_back), proxy.log_text()[-2000:]
    with Store.open(proxy.store_path) as store:
        assert read_canary_states(store)["small"].guard == "trusted_completion_delta"
