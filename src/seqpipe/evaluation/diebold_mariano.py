"""Diebold-Mariano test of equal forecast accuracy, with a Newey-West (HAC) variance.

d_t = loss_model_t - loss_baseline_t over the forecast origins, in time order. h-step forecasts made
each day overlap, so d_t is autocorrelated up to lag h-1: the long-run variance of its mean is
(gamma_0 + 2 sum_{k=1..L} (1 - k/(L+1)) gamma_k) / n with L = h - 1 (Bartlett weights; never negative).
DM = mean(d) / sqrt(that), two-sided p-value from the standard normal. DM < 0: the model's loss is lower.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import norm

from seqpipe.errors import SeqpipeError


@dataclass(frozen=True)
class DMTest:
    statistic: float
    p_value: float
    mean_difference: float
    n: int
    lags: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def newey_west_variance(d: np.ndarray, lags: int) -> float:
    """Long-run variance of the mean of ``d`` (Bartlett kernel, ``lags`` autocovariances)."""
    e = d - d.mean()
    n = len(e)
    var = float(e @ e) / n
    for k in range(1, min(lags, n - 1) + 1):
        var += 2.0 * (1.0 - k / (lags + 1)) * float(e[k:] @ e[:-k]) / n
    return var / n


def diebold_mariano(model_loss: np.ndarray, baseline_loss: np.ndarray, lags: int) -> DMTest:
    """DM test on per-origin losses of the two forecasters (same origins, time order)."""
    m, b = np.asarray(model_loss, dtype=np.float64), np.asarray(baseline_loss, dtype=np.float64)
    if m.shape != b.shape or m.ndim != 1 or len(m) < 2 or lags < 0:
        raise SeqpipeError(
            f"Diebold-Mariano needs two 1-D loss series of one length >= 2 and lags >= 0, got {m.shape}, "
            f"{b.shape}, lags={lags}"
        )
    d = m - b
    var = newey_west_variance(d, lags)
    stat = float(d.mean() / np.sqrt(var)) if var > 0 else float("nan")
    p = float(2.0 * norm.sf(abs(stat))) if np.isfinite(stat) else float("nan")
    return DMTest(stat, p, float(d.mean()), len(d), int(lags))
