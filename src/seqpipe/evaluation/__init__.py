"""The evaluation kit every domain's task shares: what an evaluation hands back (``Evaluation``).

A domain's task module (seqpipe.domain) fits its baselines and scores the model on the test split;
`seqpipe evaluate` writes the Evaluation to metrics/<experiment>.json and the MLflow run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Evaluation:
    """What an evaluator hands back: written to metrics/<experiment>.json and the MLflow run."""

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
