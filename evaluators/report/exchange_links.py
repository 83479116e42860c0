"""Where in the review UI (`shadowtap ui`) the exchanges behind a gate check are listed.

Each failing figure of the verdict links to them: the HTML report (with the UI's address) and the
UI's own overview (a path on the same site). A check scoped to a category (`task=qa`,
`tag:team=search`) narrows the list to it.
"""

from __future__ import annotations

from urllib.parse import urlencode

from shadowtap.evaluators.report.model import GateCheck

DEFAULT_UI_URL = "http://127.0.0.1:8788"   # `shadowtap ui`'s default address

# The exchange-list filter that shows what a check counted, worst first.
_CHECK_FILTERS: dict[str, dict[str, str]] = {
    "min_agreement_above_noise": {"evaluator": "agreement", "sort": "score_low", "disagreement": "1"},
    "max_faithfulness_drop": {"evaluator": "faithfulness", "sort": "score_low"},
    "max_grounding_drop": {"evaluator": "grounding", "sort": "score_low"},
    "max_contract_invalid_rate": {"evaluator": "contract", "max_score": "0"},
    "max_error_rate": {"failed": "1"},
}
_COLUMN_SCOPES = ("task", "risk_tier", "endpoint")


def exchanges_path(check: GateCheck) -> str:
    """`/exchanges?...`: the candidate's exchanges behind `check`, in the UI's exchange list."""
    query = {"candidate": check.candidate, **_CHECK_FILTERS.get(check.check, {})}
    if "evaluator" in query:
        query["source"] = check.candidate   # the candidate's own scores, not the primary's
    query.update(_scope_filter(check.scope))
    return "/exchanges?" + urlencode(query)


def _scope_filter(scope: str) -> dict[str, str]:
    dimension, _, value = scope.partition("=")
    if dimension in _COLUMN_SCOPES:
        return {dimension: value}
    if dimension.startswith("tag:"):
        return {"tag": f"{dimension[len('tag:'):]}={value}"}
    return {}   # "overall"
