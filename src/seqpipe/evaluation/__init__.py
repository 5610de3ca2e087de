"""Test-split evaluation, one module a domain, behind one small interface.

Each domain module defines
    baselines(dm, cfg) -> dict             # fitted on train, chosen on val, scored on test; JSON-able
    evaluate(model, dm, cfg, baselines, out_dir) -> Evaluation
so `seqpipe evaluate` and `seqpipe baselines` stay domain-agnostic.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqpipe.errors import SeqpipeError

DOMAINS = ("text", "audio", "stocks", "dna", "fill_blank", "digits", "forecast")


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


COMMON_EVALUATE_KEYS = {"baseline_key": "name of reports/baselines/<key>.json (default: the domain)"}


def evaluate_keys(domain: str) -> dict[str, str]:
    """The ``evaluate:`` keys a domain's evaluator reads, with what each does."""
    return {**COMMON_EVALUATE_KEYS, **getattr(domain_module(domain), "EVALUATE_KEYS", {})}


def domain_module(domain: str) -> Any:
    if domain not in DOMAINS:
        raise SeqpipeError(f"unknown domain '{domain}'", where="config.domain", fix=f"use one of {list(DOMAINS)}")
    try:
        return importlib.import_module(f"seqpipe.evaluation.{domain}")
    except ImportError as e:
        raise SeqpipeError(f"no evaluator for domain '{domain}': {e}") from e
