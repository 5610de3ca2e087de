"""How sure is a margin? Bootstrap intervals of mean(model - baseline) over the same test units.

Both scores are per unit (a clip, a sequence, a window) on the same units, so the differences are
resampled together (paired): what varies between resamples is which units were drawn, not the
models. Independent units (clips, sequences) are drawn one at a time (``paired_bootstrap``); a
series' units (consecutive windows, days) are correlated, so whole runs of ``block`` consecutive
units are drawn instead (``moving_block_bootstrap``), which keeps the short-range dependence inside
each block. Seeded with a numpy Generator: the same generator state gives the same interval.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from seqpipe.errors import SeqpipeError


@dataclass(frozen=True)
class Interval:
    """The observed mean difference and its percentile bootstrap interval (``level``, e.g. 0.95)."""

    mean: float
    low: float
    high: float
    level: float


def _differences(model: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    m, b = np.asarray(model, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    if m.shape != b.shape or m.ndim != 1 or len(m) == 0:
        raise SeqpipeError(
            f"per-unit scores must be two 1-D arrays of one length, got {m.shape} and {b.shape}",
            fix="pass the model's and the baseline's metric for each test unit, in the same order",
        )
    return m - b


def _interval(d: np.ndarray, idx: np.ndarray, level: float) -> Interval:
    means = d[idx].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(d.mean()), float(low), float(high), level)


def paired_bootstrap(
    model: np.ndarray, baseline: np.ndarray, rng: np.random.Generator, resamples: int = 2000, level: float = 0.95
) -> Interval:
    """Interval of mean(model - baseline) over independent test units, units drawn with replacement."""
    d = _differences(model, baseline)
    return _interval(d, rng.integers(0, len(d), size=(resamples, len(d))), level)


def moving_block_bootstrap(
    model: np.ndarray,
    baseline: np.ndarray,
    rng: np.random.Generator,
    block: int,
    resamples: int = 2000,
    level: float = 0.95,
) -> Interval:
    """Interval of mean(model - baseline) over a series: ceil(n / block) blocks of ``block`` consecutive
    units, each starting anywhere, joined and cut to n units. ``block=1`` is ``paired_bootstrap``."""
    d = _differences(model, baseline)
    n = len(d)
    if not 1 <= block <= n:
        raise SeqpipeError(f"block must lie in 1..{n} (the number of units), got {block}")
    starts = rng.integers(0, n - block + 1, size=(resamples, -(-n // block)))
    idx = (starts[:, :, None] + np.arange(block)).reshape(resamples, -1)[:, :n]
    return _interval(d, idx, level)


def long_block_bootstrap(
    model: np.ndarray,
    baseline: np.ndarray,
    rng: np.random.Generator,
    block: int,
    resamples: int = 2000,
    level: float = 0.95,
) -> Interval:
    """``moving_block_bootstrap`` for series too long to index unit by unit (a text stream's millions of
    characters): the same draws of block starts, each block's sum read from prefix sums, so memory grows
    with the number of blocks, not of units. Equal to it up to the rounding of the sums."""
    d = _differences(model, baseline)
    n = len(d)
    if not 1 <= block <= n:
        raise SeqpipeError(f"block must lie in 1..{n} (the number of units), got {block}")
    k = -(-n // block)
    starts = rng.integers(0, n - block + 1, size=(resamples, k))
    csum = np.concatenate([[0.0], np.cumsum(d)])
    lengths = np.full(k, block)
    lengths[-1] = n - (k - 1) * block  # the joined blocks are cut to n units
    means = (csum[starts + lengths] - csum[starts]).sum(axis=1) / n
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(d.mean()), float(low), float(high), level)


def statistic_bootstrap(
    statistic: Callable[[np.ndarray], float],
    n: int,
    rng: np.random.Generator,
    resamples: int = 2000,
    level: float = 0.95,
) -> Interval:
    """Interval of a margin that is no mean of per-unit scores (AUROC): ``statistic(idx)`` recomputes
    model - baseline on the units ``idx``, drawn with replacement; resamples where it is undefined
    (NaN, e.g. one class only) are left out."""
    values = np.array([statistic(rng.integers(0, n, size=n)) for _ in range(resamples)])
    values = values[np.isfinite(values)]
    point = float(statistic(np.arange(n)))
    if len(values) == 0:
        return Interval(point, float("nan"), float("nan"), level)
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return Interval(point, float(low), float(high), level)
