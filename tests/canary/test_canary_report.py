"""The report's canary section: share over time, rollbacks with their guard and reason, and
fallback rates by risk tier and task; absent when the store never ran a canary."""

import orjson
from click.testing import CliRunner

from shadowtap.core.cli import cli
from shadowtap.core.store import Store
from shadowtap.core.store.canary_store import set_canary_share
from shadowtap.evaluators.report.build import build_report
from shadowtap.evaluators.report.render_markdown import render_markdown
from tests.canary.traffic import Traffic


def canary_store(path):
    with Store.open(path) as store:
        set_canary_share(store, "small", 0.05, status="running", changed_by="ana", reason="first slice")
        set_canary_share(store, "small", 0.2, status="running", changed_by="ana", reason="looks fine")
    traffic = Traffic(path)  # the requests come after the start: age 0
    traffic.canaried("small", 6, task="chat", risk_tier="low", age_s=0)
    traffic.canaried("small", 2, task="chat", risk_tier="low", fallback_reason="contract_invalid", age_s=0)
    traffic.canaried("small", 2, task="refunds", risk_tier="low", fallback_reason="candidate_timeout", age_s=0)
    traffic.primary(3)
    with Store.open(path) as store:
        set_canary_share(store, "small", 0.0, status="rolled_back", changed_by="guard",
                         reason="contract_invalid_rate = 0.200 against 0.05 over 10 samples",
                         guard="contract_invalid_rate", window={"value": 0.2, "samples": 10})


def test_fallbacks_are_attributed_to_the_canary_running_when_they_happened(tmp_path):
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        set_canary_share(store, "a", 0.1, status="running", changed_by="ana", reason="")
    Traffic(path, now=__import__("time").time() - 600).canaried("a", 3, fallback_reason="candidate_error")
    with Store.open(path) as store:
        store.captures.sql.execute("update canary_events set at = at - 900")  # a ran from 15 minutes ago
        set_canary_share(store, "a", 0.0, status="rolled_back", changed_by="ana", reason="")
        set_canary_share(store, "b", 0.1, status="running", changed_by="ana", reason="")
    Traffic(path).canaried("b", 2, fallback_reason="candidate_timeout", age_s=0)
    with Store.open(path) as store:
        section = build_report(store.reports, store="s.db").canary
    fell_back = {(f.candidate, f.dimension): f.reasons for f in section.fallbacks}
    assert fell_back[("a", "task")] == {"candidate_error": 3} and fell_back[("b", "task")] == {"candidate_timeout": 2}
    assert section.unattributed_fallbacks == 0


def test_a_store_without_canaries_has_no_canary_section(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        Traffic(tmp_path / "s.db").primary(3)
        assert build_report(store.reports, store="s.db").canary is None


def test_the_section_holds_share_changes_rollbacks_and_fallbacks_by_cohort(tmp_path):
    canary_store(tmp_path / "s.db")
    with Store.open(tmp_path / "s.db") as store:
        section = build_report(store.reports, store="s.db").canary
    assert [(c.share_before, c.share_after, c.changed_by) for c in section.changes] == [
        (0.0, 0.05, "ana"), (0.05, 0.2, "ana"), (0.2, 0.0, "guard")]
    assert [(r.guard, r.window["value"]) for r in section.rollbacks] == [("contract_invalid_rate", 0.2)]
    assert section.served == {"small": 6}
    by_cohort = {(f.dimension, f.value): f for f in section.fallbacks}
    assert (by_cohort["task", "chat"].canaried, by_cohort["task", "chat"].fallbacks) == (8, 2)
    assert by_cohort["task", "refunds"].rate == 1.0 and by_cohort["task", "refunds"].reasons == {
        "candidate_timeout": 2}
    assert by_cohort["risk_tier", "low"].rate == 0.4
    assert 0 < by_cohort["risk_tier", "low"].low < 0.4 < by_cohort["risk_tier", "low"].high < 1


def test_the_json_and_the_markdown_carry_the_section(tmp_path):
    canary_store(tmp_path / "s.db")
    result = CliRunner().invoke(cli, ["report", "--json", "--store", str(tmp_path / "s.db")])
    assert result.exit_code == 0, result.output
    canary = orjson.loads(result.output)["canary"]
    assert canary["served"] == {"small": 6} and len(canary["changes"]) == 3
    with Store.open(tmp_path / "s.db") as store:
        markdown = render_markdown(build_report(store.reports, store="s.db"))
    assert "### canary: share over time" in markdown and "| 5% → 20% |" in markdown
    assert "### canary: rollbacks" in markdown and "contract_invalid_rate" in markdown
    assert "| small | task=refunds | 2 | 2 | 100.0% [" in markdown


def test_the_html_page_has_a_canary_section_only_when_the_range_holds_a_canary(tmp_path):
    from shadowtap.evaluators.report.render_html import render_html

    Traffic(tmp_path / "plain.db").primary(2)
    with Store.open(tmp_path / "plain.db") as store:
        assert "<h2>Canary</h2>" not in render_html(build_report(store.reports, store="plain.db"))
    canary_store(tmp_path / "s.db")
    with Store.open(tmp_path / "s.db") as store:
        page = render_html(build_report(store.reports, store="s.db"))
        assert "<h2>Canary</h2>" in page and "canary share" in page and "canary: rollbacks" in page
        assert "contract_invalid_rate" in page and "task=refunds" in page
        set_canary_share(store, "<b>x</b>", 0.1, status="running", changed_by="ana", reason="a <script> reason")
        page = render_html(build_report(store.reports, store="s.db"))
    assert "<script>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page and "a &lt;script&gt; reason" in page


def test_trust_metrics_compare_feedback_on_the_canary_with_feedback_on_the_primary(tmp_path):
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        set_canary_share(store, "small", 0.1, status="running", changed_by="ana", reason="")
    traffic = Traffic(path)
    primary_ids, candidate_ids = traffic.primary(10), traffic.canaried("small", 10)
    traffic.feedback(primary_ids, "accepted")
    traffic.feedback(candidate_ids[:6], "accepted")
    traffic.feedback(candidate_ids[6:8], "rejected")
    traffic.feedback(candidate_ids[8:], "policy_violation")
    with Store.open(path) as store:
        report = build_report(store.reports, store="s.db")
    [outcomes] = report.canary.outcomes
    assert outcomes.trusted_completion.rate == 0.6 and outcomes.primary_trusted_completion.rate == 1.0
    delta = outcomes.trusted_completion_delta
    assert abs(delta.mean - -0.4) < 1e-9 and delta.low < -0.4 < delta.high < 0
    assert outcomes.policy_violation.count == 2 and outcomes.primary_policy_violation.count == 0
    assert outcomes.edit_ratio.mean == 0.0 and outcomes.edit_ratio_delta.mean == 0.0
    assert "canary: trust metrics from feedback" in render_markdown(report)
