"""The evaluation kit every domain's task shares: what an evaluation hands back (``Evaluation``), the
classification scores (``classify``), choosing a baseline's setting on val (``select``) and bootstrap
intervals of a margin (``bootstrap``).

A domain's task module (seqpipe.domain) fits its baselines and scores the model on the test split;
`seqpipe evaluate` writes the Evaluation to metrics/<experiment>.json and the MLflow run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqpipe.evaluation.reported import TYPED_SECTIONS, DynamicEvaluation, Reported, Scored

__all__ = ["DynamicEvaluation", "Evaluation", "Reported", "Scored"]


@dataclass
class Evaluation:
    """What an evaluator hands back: written to metrics/<experiment>.json and the MLflow run.

    The sections the summary reads are typed fields (None: the task has none); the metrics file holds
    them beside ``extra``'s keys (``extra_section``). A task may still hand one in ``extra``: it is
    moved to its field and keeps its place among extra's keys in the file.
    """

    task: str
    primary_metric: str
    direction: str  # "lower" or "higher" is better
    model: dict[str, float]
    baselines: dict[str, dict[str, float]]
    extra: dict[str, Any] = field(default_factory=dict)
    artifacts: list[Path] = field(default_factory=list)
    # more numbers for the MLflow run's metrics, beside model and baselines (the metrics file has them in extra):
    # variants such as the model + n-gram mixture, so the runs table can sort and chart them
    tracked: dict[str, float] = field(default_factory=dict)
    # other models scored like the model, by name -> their metrics (text: the model + n-gram mixture)
    variants: dict[str, dict[str, float]] | None = None
    # model metrics of a shifted test set (audio: the channel-shifted clips), each a summary row of its own
    shifted_metrics: list[str] | None = None
    # the adapting model beside the adapting n-gram on the test stream (text), reported apart
    dynamic_evaluation: dict[str, Any] | None = None
    # model - best baseline on the primary metric with its bootstrap interval (seqpipe.evaluation.margin); last
    margin: dict[str, Any] | None = None
    _order: list[str] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._order = list(self.extra)
        for key in TYPED_SECTIONS:
            if key in self.extra:
                value = self.extra.pop(key)
                if getattr(self, key) is None:
                    setattr(self, key, value)

    def extra_section(self) -> dict[str, Any]:
        """extra's keys and the typed sections that are set, in the order the task gave them (typed
        fields not handed in ``extra`` last, in declaration order): the metrics file's tail."""
        typed = {k: getattr(self, k) for k in TYPED_SECTIONS if getattr(self, k) is not None}
        out: dict[str, Any] = {}
        for key in self._order:
            if key in typed:
                out[key] = typed.pop(key)
            elif key in self.extra:
                out[key] = self.extra[key]
        out.update({k: v for k, v in self.extra.items() if k not in out})
        out.update(typed)
        return out
