"""Test-split evaluation, one module a task (domain), behind one small interface.

Each module ``seqpipe/evaluation/<domain>.py`` defines
    baselines(dm, cfg) -> dict             # fitted on train, chosen on val, scored on test; JSON-able
    evaluate(model, dm, cfg, baselines, out_dir) -> Evaluation
and optionally ``predict(model, paths)``, ``EVALUATE_KEYS`` (its config keys) and ``DVC_REPORTS`` (its
report files), so `seqpipe evaluate`, `baselines` and `predict` stay domain-agnostic. The registry is the
folder itself: a new module here is a new domain (``domain: <module name>`` in a config), no table to edit.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqpipe.errors import SeqpipeError, missing_extra


def domains() -> list[str]:
    """Every task module in this package (the registry: one module a domain)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


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


COMMON_EVALUATE_KEYS = {"baseline_key": "name of reports/baselines/<key>.json (default: the domain)"}


def evaluate_keys(domain: str) -> dict[str, str]:
    """The ``evaluate:`` keys a domain's evaluator reads, with what each does."""
    return {**COMMON_EVALUATE_KEYS, **getattr(domain_module(domain), "EVALUATE_KEYS", {})}


def domain_module(domain: str) -> Any:
    if domain not in domains():
        raise SeqpipeError(f"unknown domain '{domain}'", where="config.domain", fix=f"use one of {domains()}")
    try:
        return importlib.import_module(f"seqpipe.evaluation.{domain}")
    except ImportError as e:
        raise (missing_extra(e) or SeqpipeError(f"no evaluator for domain '{domain}': {e}")) from e
