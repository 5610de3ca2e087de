"""The typed sections of a metrics file that the summary reads, beside the model and baseline metrics.

``Evaluation`` (seqpipe.evaluation) carries them from a task to metrics/<experiment>.json;
``Reported.from_json`` reads them back from that file's JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# the Evaluation fields written into the metrics file under their own names (in declaration order)
TYPED_SECTIONS = ("variants", "shifted_metrics", "dynamic_evaluation", "margin")


@dataclass(frozen=True)
class Scored:
    """One row of the dynamic evaluation: what adapted and its test bits per character."""

    name: str
    test_bpc: float

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Scored:
        return cls(name=str(d["name"]), test_bpc=float(d["test_bpc"]))


@dataclass(frozen=True)
class DynamicEvaluation:
    """The model adapting on the test stream as it reads it, against the n-gram with a cache."""

    model: Scored
    ngram: Scored

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DynamicEvaluation:
        return cls(model=Scored.from_json(d["model"]), ngram=Scored.from_json(d["ngram"]))


@dataclass(frozen=True)
class Reported:
    """The summary's view of a metrics file's typed sections (empty where the experiment has none)."""

    variants: dict[str, dict[str, float]]
    shifted_metrics: list[str]
    dynamic_evaluation: DynamicEvaluation | None
    margin: dict[str, Any] | None = None  # model - best baseline with its bootstrap interval (evaluation.margin)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Reported:
        dyn = doc.get("dynamic_evaluation")
        return cls(
            variants=dict(doc.get("variants") or {}),
            shifted_metrics=list(doc.get("shifted_metrics") or []),
            dynamic_evaluation=DynamicEvaluation.from_json(dyn) if dyn else None,
            margin=doc.get("margin") or None,
        )


def verdict(margin: dict[str, Any] | None, direction: str) -> str:
    """better / worse / tie (the 95% interval of model - baseline straddles 0, or there is none)."""
    if not margin:
        return "-"
    low, high = margin["ci95"]
    if not (math.isfinite(low) and math.isfinite(high)):
        return "tie"
    sign = -1.0 if direction == "lower" else 1.0  # > 0: the model is better
    lo, hi = sorted((sign * low, sign * high))
    return "better" if lo > 0 else "worse" if hi < 0 else "tie"
