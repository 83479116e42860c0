"""Config section for the release gate: [gate] thresholds a candidate must meet to pass."""

from __future__ import annotations

from dataclasses import dataclass, field

from shadowtap.core.config.checks import check_range
from shadowtap.core.errors import ConfigError

CATEGORY_DIMENSIONS = ("endpoint", "task", "risk_tier", "tag")
# Outcome checks (human feedback on the primary's live answers) are off at these defaults: values
# that no figure can fail, so TOML (which has no null) can still write every key down.
OUTCOME_CHECKS_OFF = {"min_trusted_task_completion": 0.0, "max_correction_minutes": float("inf"),
                      "max_rejection_rate": 1.0, "max_policy_violation_rate": 1.0, "min_reviewer_kappa": -1.0}


@dataclass(frozen=True)
class GateConfig:
    min_samples: int = 50                      # answered shadow samples per candidate
    min_agreement_above_noise: float = -0.05   # candidate agreement minus the primary-vs-twin agreement
    max_faithfulness_drop: float = 0.05        # primary mean minus candidate mean
    max_grounding_drop: float = 0.05
    max_contract_invalid_rate: float = 0.02
    max_error_rate: float = 0.02               # errors and timeouts over calls made
    max_latency_p95_ratio: float = 1.5         # candidate p95 over the twin's (enough twin answers) or primary's
    max_cost_ratio: float = 1.5                # candidate cost per 1,000 requests over the primary's
    per_category: bool = False                 # also check each category with enough samples
    category_min_samples: int = 20
    categories: list[str] = field(default_factory=lambda: ["endpoint", "task", "risk_tier"])
    min_trusted_task_completion: float = 0.0   # share of fed-back exchanges completed and trusted; 0: off
    max_correction_minutes: float = float("inf")  # mean edit minutes per completed answer; inf: off
    max_rejection_rate: float = 1.0            # share of fed-back exchanges rejected; 1: off
    max_policy_violation_rate: float = 1.0     # share with a policy violation; 1: off
    min_reviewer_kappa: float = -1.0           # reviewer agreement (Cohen's or Fleiss' kappa); -1: off
    outcomes_min_exchanges: int = 20           # exchanges with feedback the outcome checks need to count

    def validate(self) -> None:
        check_range("[gate] min_samples", self.min_samples, 0)
        check_range("[gate] min_agreement_above_noise", self.min_agreement_above_noise, -1, 1)
        for key in ("max_faithfulness_drop", "max_grounding_drop"):
            check_range(f"[gate] {key}", getattr(self, key), -1, 1)
        for key in ("max_contract_invalid_rate", "max_error_rate"):
            check_range(f"[gate] {key}", getattr(self, key), 0, 1)
        for key in ("max_latency_p95_ratio", "max_cost_ratio"):
            check_range(f"[gate] {key}", getattr(self, key), 0)
        check_range("[gate] category_min_samples", self.category_min_samples, 1)
        check_range("[gate] min_trusted_task_completion", self.min_trusted_task_completion, 0, 1)
        check_range("[gate] max_correction_minutes", self.max_correction_minutes, 0)
        for key in ("max_rejection_rate", "max_policy_violation_rate"):
            check_range(f"[gate] {key}", getattr(self, key), 0, 1)
        check_range("[gate] min_reviewer_kappa", self.min_reviewer_kappa, -1, 1)
        check_range("[gate] outcomes_min_exchanges", self.outcomes_min_exchanges, 1)
        for dimension in self.categories:
            if dimension not in CATEGORY_DIMENSIONS and not dimension.startswith("tag:"):
                raise ConfigError(f"[gate] categories: {dimension!r} is not one of "
                                  f"{', '.join(CATEGORY_DIMENSIONS[:-1])} or tag:NAME")
