"""How every stock forecaster is scored: MAE, RMSE and directional accuracy, per step, and skill.

The definitions the stock and forecast evaluations share (seqpipe.domains.stocks.task's docstring says
what each means); plain numpy, in percent log-return units.
"""

from __future__ import annotations

import numpy as np


def score(pred: np.ndarray, actual: np.ndarray, target: str) -> dict[str, float]:
    """MAE, RMSE (+ directional accuracy for returns), pooled over windows and steps."""
    err = pred - actual
    out = {"test_mae": float(np.abs(err).mean()), "test_rmse": float(np.sqrt((err**2).mean()))}
    if target == "returns":
        moved = actual != 0
        hit = np.where(pred == 0, 0.5, (np.sign(pred) == np.sign(actual)).astype(float))
        out["test_dir_acc"] = float(hit[moved].mean())
    return out


def mae_per_step(pred: np.ndarray, actual: np.ndarray) -> list[float]:
    """MAE of each horizon step h = 1..H (what a per-step comparison, e.g. seq2seq vs direct, reads)."""
    return [float(v) for v in np.abs(pred - actual).mean(0)]


def skill(model_mae: float, baseline_mae: float) -> float:
    return 1.0 - model_mae / baseline_mae


VARIANCE_FLOOR = 1e-6  # percent^2: QLIKE reads max(variance, this) on both sides (a 0 forecast has no ratio)


def variance_losses(pred: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Volatility forecasts judged as variances (Patton 2011's robust pair): MSE of the variance, and
    QLIKE = y/f - log(y/f) - 1 with y, f the realized and forecast variance, pooled over windows and steps."""
    y, f = actual**2, pred**2
    ratio = np.maximum(y, VARIANCE_FLOOR) / np.maximum(f, VARIANCE_FLOOR)
    return {"test_mse_var": float(((f - y) ** 2).mean()), "test_qlike": float((ratio - np.log(ratio) - 1).mean())}


def window_abs_errors(pred: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Absolute error of each window, averaged over its H steps (N,): the unit the margin resamples."""
    return np.abs(pred - actual).mean(axis=1)
