"""Which evaluators exist: the built-ins by name, plus third-party ones from entry points.

Classes are imported only when an evaluator is used, so listing names never imports ragas.
Third-party packages register `name = "package.module:EvaluatorClass"` under the
`shadowtap.evaluators` entry point group; a built-in name always refers to the built-in.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from shadowtap.core.config import ShadowtapConfig
from shadowtap.core.errors import ConfigError
from shadowtap.evaluators.base import Evaluator

ENTRY_POINT_GROUP = "shadowtap.evaluators"

BUILTIN: dict[str, str] = {
    "grounding": "shadowtap.evaluators.grounding:GroundingEvaluator",
    "faithfulness": "shadowtap.evaluators.faithfulness:FaithfulnessEvaluator",
    "freshness": "shadowtap.evaluators.freshness:FreshnessEvaluator",
    "contract": "shadowtap.evaluators.contract:ContractEvaluator",
    "agreement": "shadowtap.evaluators.agreement:AgreementEvaluator",
    "verbosity": "shadowtap.evaluators.verbosity:VerbosityEvaluator",
    "refusal": "shadowtap.evaluators.refusal:RefusalEvaluator",
    "latency_delta": "shadowtap.evaluators.deltas:LatencyDeltaEvaluator",
    "cost_delta": "shadowtap.evaluators.deltas:CostDeltaEvaluator",
}


class EvaluatorLoadError(ConfigError):
    """An evaluator name is unknown, or its class cannot be imported or built."""


def _entry_points() -> list[EntryPoint]:
    # One seam for tests: they replace this to register fake third-party evaluators.
    return list(entry_points(group=ENTRY_POINT_GROUP))


def available() -> dict[str, str]:
    """Every evaluator name and the "module:Class" it loads, built-ins first."""
    names = dict(BUILTIN)
    for entry in _entry_points():
        names.setdefault(entry.name, entry.value)
    return names


def load_class(name: str) -> type[Evaluator]:
    """The evaluator class registered under `name`, imported now."""
    target = available().get(name)
    if target is None:
        raise EvaluatorLoadError(f"unknown evaluator {name!r}: expected one of {', '.join(sorted(available()))}")
    module_name, _, attribute = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attribute)
    except Exception as exc:  # an import of third-party code can fail in any way
        raise EvaluatorLoadError(f"evaluator {name!r} ({target}) cannot be loaded: "
                                 f"{type(exc).__name__}: {exc}") from None
    missing = [part for part in ("name", "version", "needs_judge", "from_config", "applies", "score")
               if not hasattr(cls, part)]
    if missing:
        raise EvaluatorLoadError(f"evaluator {name!r} ({target}) does not follow the evaluator contract: "
                                 f"missing {', '.join(missing)}")
    return cls


def build_evaluators(config: ShadowtapConfig, names: Sequence[str] = (), *,
                     config_dir: Path) -> tuple[list[Evaluator], list[str]]:
    """Evaluators to run, and notes about the ones left out.

    `names` (else `[eval] evaluators`) picks them; with neither, every registered evaluator runs
    except those that need a judge when `[judge] model` is empty.
    """
    chosen = list(dict.fromkeys(names or config.eval.evaluators))
    explicit = bool(chosen)
    skipped: list[str] = []
    evaluators: list[Evaluator] = []
    for name in chosen or list(available()):
        cls = load_class(name)
        if not explicit and cls.needs_judge and not config.judge.model:
            skipped.append(f"{name}: needs a judge model and [judge] model is not set")
            continue
        try:
            evaluators.append(cls.from_config(config, config_dir=config_dir))
        except ConfigError:
            raise
        except Exception as exc:
            raise EvaluatorLoadError(f"evaluator {name!r} cannot be built from the config: "
                                     f"{type(exc).__name__}: {exc}") from None
        if evaluators[-1].name != name:
            raise EvaluatorLoadError(f"evaluator registered as {name!r} calls itself {evaluators[-1].name!r}; "
                                     "the names must match")
    return evaluators, skipped
