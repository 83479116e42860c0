"""GuardResult: one guard's verdict on one candidate's window."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class GuardResult:
    name: str                 # error_rate, fallback_rate, contract_invalid_rate, grounding_drop, ...
    value: float | None       # the measured figure; None when nothing could be measured
    threshold: float
    samples: int              # requests (or feedback items) it rests on
    red: bool                 # crossed the threshold with at least min_samples
    cohort: str | None = None  # "risk_tier=low", "task=refunds"... for guards computed per cohort
    note: str = ""            # why it is not evaluated, or what it was compared with

    def describe(self) -> str:
        where = f" for {self.cohort}" if self.cohort else ""
        if self.value is None:
            return f"{self.name}{where}: not measured ({self.note or 'no samples'})"
        return (f"{self.name}{where} = {self.value:.3f} against {self.threshold:g} over {self.samples} samples"
                + (f" ({self.note})" if self.note else ""))

    def as_dict(self) -> dict:
        return asdict(self)


def rate_result(name: str, hits: int, samples: int, threshold: float, min_samples: int,
                cohort: str | None = None) -> GuardResult:
    """A rate that is red above `threshold`, once it rests on at least `min_samples`."""
    if samples == 0:
        return GuardResult(name, None, threshold, 0, False, cohort, "no samples")
    value = hits / samples
    enough = samples >= min_samples
    return GuardResult(name, value, threshold, samples, enough and value > threshold, cohort,
                       "" if enough else f"waits for {min_samples} samples")
