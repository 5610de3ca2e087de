"""The margin block of a metrics file: model - best baseline on the primary metric, with a seeded 95%
bootstrap interval over the test units, so a reader sees at once whether the margin could be noise.

    {"vs": <best baseline>, "value": model - baseline, "ci95": [low, high], "unit": what was resampled,
     "units": how many, "block": units a block (1: independent units), "resamples": ..., "seed": ...}

The best baseline is the one the metrics file names (``best_baseline``: the best on the primary metric).
``verdict`` (seqpipe.evaluation.reported: the summary reads it without this module's numpy draws) turns a block
into better / worse / tie (the interval straddles 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from seqpipe.evaluation.bootstrap import Interval, long_block_bootstrap, paired_bootstrap, statistic_bootstrap
from seqpipe.evaluation.reported import verdict

__all__ = ["best_baseline", "statistic_margin", "unit_margin", "verdict"]

RESAMPLES = 2000
SEED = 0


def best_baseline(baselines: dict[str, dict[str, float]], primary: str, direction: str) -> str | None:
    """The baseline the metrics file calls best: lowest (or highest) primary metric, the first of equals."""
    scored = {k: v[primary] for k, v in baselines.items() if primary in v}
    if not scored:
        return None
    return (min if direction == "lower" else max)(scored, key=scored.get)


def _block(vs: str, iv: Interval, unit: str, units: int, block: int, note: str | None) -> dict[str, Any]:
    out = {
        "vs": vs,
        "value": iv.mean,
        "ci95": [iv.low, iv.high],
        "unit": unit,
        "units": int(units),
        "block": int(block),
        "resamples": RESAMPLES,
        "seed": SEED,
    }
    if note:
        out["note"] = note
    return out


def unit_margin(
    model: np.ndarray, baseline: np.ndarray, vs: str, unit: str, block: int = 1, note: str | None = None
) -> dict[str, Any]:
    """Margin of per-unit scores (their mean is the metric): units drawn one at a time (``block`` 1) or in
    moving blocks of ``block`` consecutive units (a series)."""
    rng = np.random.default_rng(SEED)
    m, b = np.asarray(model, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    block = max(1, min(int(block), len(m)))
    if block == 1:
        iv = paired_bootstrap(m, b, rng, RESAMPLES)
    else:
        iv = long_block_bootstrap(m, b, rng, block, RESAMPLES)
    return _block(vs, iv, unit, len(m), block, note)


def statistic_margin(
    statistic: Callable[[np.ndarray], float], n: int, vs: str, unit: str, note: str | None = None
) -> dict[str, Any]:
    """Margin of a statistic recomputed on each resample of the ``n`` units (AUROC of model and baseline)."""
    iv = statistic_bootstrap(statistic, n, np.random.default_rng(SEED), RESAMPLES)
    return _block(vs, iv, unit, n, 1, note)
