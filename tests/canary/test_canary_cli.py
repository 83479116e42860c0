"""`shadowtap canary status|start|promote|rollback`: the state lands in the store, with who and why,
and every refusal names what is wrong."""

import getpass

import orjson
from click.testing import CliRunner

from shadowtap.core.cli import cli
from shadowtap.core.store import Store
from shadowtap.core.store.canary_store import canary_events, read_canary_states, set_canary_share


def run(config_path, *arguments: str):
    return CliRunner().invoke(cli, ["canary", *arguments, "--config", str(config_path)])


def states(config_path):
    with Store.open(config_path.parent / "s.db") as store:
        return read_canary_states(store)


def test_status_lists_every_canary_candidate_as_off_before_anything_starts(config_path):
    result = run(config_path, "status", "--json")
    assert result.exit_code == 0, result.output
    rows = orjson.loads(result.output)
    assert [(row["candidate"], row["status"], row["share"], row["max_share"]) for row in rows] == [
        ("small", "off", 0.0, 0.3)]


def test_start_persists_the_share_who_and_why(config_path):
    result = run(config_path, "start", "small", "--share", "0.05", "--reason", "first slice", "--by", "ana")
    assert result.exit_code == 0, result.output
    assert "running at 5% of eligible requests" in result.output and "enabled = false" not in result.output
    state = states(config_path)["small"]
    assert (state.share, state.status, state.changed_by, state.reason) == (0.05, "running", "ana", "first slice")


def test_changed_by_defaults_to_the_os_user(config_path):
    assert run(config_path, "start", "small", "--share", "0.1").exit_code == 0
    assert states(config_path)["small"].changed_by == getpass.getuser()


def test_promote_raises_the_share_of_a_running_canary(config_path):
    run(config_path, "start", "small", "--share", "0.05")
    result = run(config_path, "promote", "small", "--share", "0.2", "--by", "ana")
    assert result.exit_code == 0, result.output
    assert states(config_path)["small"].share == 0.2
    with Store.open(config_path.parent / "s.db") as store:
        assert [e["share_after"] for e in canary_events(store, "small")] == [0.05, 0.2]


def test_promote_above_max_share_is_refused_unless_forced(config_path):
    run(config_path, "start", "small", "--share", "0.05")
    refused = run(config_path, "promote", "small", "--share", "0.5")
    assert refused.exit_code == 2 and "above this candidate's max_share (0.3)" in refused.output
    assert states(config_path)["small"].share == 0.05
    forced = run(config_path, "promote", "small", "--share", "0.5", "--force")
    assert forced.exit_code == 0 and states(config_path)["small"].share == 0.5


def test_promote_needs_a_running_canary_and_a_higher_share(config_path):
    not_running = run(config_path, "promote", "small", "--share", "0.1")
    assert not_running.exit_code == 2 and "is not running" in not_running.output
    run(config_path, "start", "small", "--share", "0.2")
    lower = run(config_path, "promote", "small", "--share", "0.1")
    assert lower.exit_code == 2 and "is not above the current share 0.2" in lower.output


def test_promote_is_refused_while_a_guard_is_red(config_path):
    from tests.canary.traffic import Traffic

    run(config_path, "start", "small", "--share", "0.1")
    Traffic(config_path.parent / "s.db").canaried("small", 10, fallback_reason="candidate_error")
    refused = run(config_path, "promote", "small", "--share", "0.2")
    assert refused.exit_code == 1
    assert "guard error_rate is red" in refused.output
    assert states(config_path)["small"].share == 0.1
    forced = run(config_path, "promote", "small", "--share", "0.2", "--force")
    assert forced.exit_code == 0 and states(config_path)["small"].share == 0.2


def test_promote_after_a_rollback_says_to_start_again(config_path):
    run(config_path, "start", "small", "--share", "0.1")
    run(config_path, "rollback", "small")
    result = run(config_path, "promote", "small", "--share", "0.2")
    assert result.exit_code == 2 and "is rolled back: start it with" in result.output


def test_rollback_sets_the_share_to_zero_with_the_reason(config_path):
    run(config_path, "start", "small", "--share", "0.1")
    result = run(config_path, "rollback", "small", "--reason", "pager says so", "--by", "bo")
    assert result.exit_code == 0, result.output
    state = states(config_path)["small"]
    assert (state.share, state.status, state.reason, state.changed_by, state.guard) == (
        0.0, "rolled_back", "pager says so", "bo", None)


def test_an_unknown_candidate_is_named_with_the_configured_ones(config_path):
    result = run(config_path, "start", "big", "--share", "0.1")
    assert result.exit_code == 2
    assert "no [[candidates]] named 'big'" in result.output and "small, shadow-only" in result.output
    assert run(config_path, "rollback", "big").exit_code == 2


def test_a_candidate_without_a_canary_table_cannot_start(config_path):
    result = run(config_path, "start", "shadow-only", "--share", "0.1")
    assert result.exit_code == 2 and "has no [candidates.canary] table" in result.output
    assert states(config_path) == {}


def test_a_share_outside_0_to_1_is_refused(config_path):
    for share in ("1.5", "-0.1"):
        result = run(config_path, "start", "small", "--share", share, "--force")
        assert result.exit_code == 2 and "expected a number between 0 and 1" in result.output
    assert states(config_path) == {}


def test_status_shows_the_guard_and_numbers_of_the_last_automatic_rollback(config_path):
    with Store.open(config_path.parent / "s.db") as store:
        set_canary_share(store, "small", 0.1, status="running", changed_by="ana", reason="go")
        set_canary_share(store, "small", 0.0, status="rolled_back", changed_by="guard", reason="error_rate = 0.400",
                         guard="error_rate", window={"value": 0.4, "samples": 30})
    rows = orjson.loads(run(config_path, "status", "--json").output)
    assert rows[0]["status"] == "rolled_back" and rows[0]["guard"] == "error_rate"
    assert rows[0]["last_rollback"]["guard"] == "error_rate"
    assert rows[0]["last_rollback"]["window"] == {"value": 0.4, "samples": 30}
    table = run(config_path, "status").output
    assert "rolled_back" in table and "by guard error_rate" in table and "samples=30" in table


def test_starting_a_disabled_candidate_warns_that_nothing_will_serve_it(config_path):
    config_path.write_text(config_path.read_text().replace('api_base = "http://127.0.0.1:9100/v1"\n',
                                                           'api_base = "http://127.0.0.1:9100/v1"\nenabled = false\n'))
    result = run(config_path, "start", "small", "--share", "0.1")
    assert result.exit_code == 0 and "has enabled = false" in result.output
