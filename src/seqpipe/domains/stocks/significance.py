"""Is the model's margin over the best stock baseline more than noise? The margin block and a
Diebold-Mariano test, both on the primary loss (absolute error), shared by stocks and forecast.

The unit is a test window (its absolute error averaged over the H steps; the model's averaged over
its seeds too, so the mean over windows is the reported test MAE of each). Windows overlap in time
(h-step targets share days) and tickers move together on a day, so the windows are put in date order
(ticker order within a day) and resampled in moving blocks of ``BLOCK_DAYS`` trading days' windows.
The DM test reads the per-date mean loss difference, in date order, with h - 1 Newey-West lags.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seqpipe.domains.stocks.scoring import window_abs_errors
from seqpipe.evaluation.diebold_mariano import diebold_mariano
from seqpipe.evaluation.margin import unit_margin

BLOCK_DAYS = 20  # about a trading month, four times the 5-day overlap of the default horizon


def _seed_mean_loss(pred: np.ndarray, actual: np.ndarray) -> np.ndarray:
    pred = pred[None] if pred.ndim == 2 else pred
    return np.mean([window_abs_errors(p, actual) for p in pred], axis=0)


def margin_and_dm(
    dates: np.ndarray, tick: np.ndarray, seeds: np.ndarray, actual: np.ndarray, baseline: np.ndarray, vs: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(margin block, DM test) of the model's (seeds, N, H) forecasts against ``baseline``'s, (N, H) or (seeds,
    N, H) (another seeded model, e.g. forecast's direct one)."""
    model_loss = _seed_mean_loss(seeds, actual)
    base_loss = _seed_mean_loss(baseline, actual)
    order = np.lexsort((tick, dates))
    days, day_of = np.unique(dates[order], return_inverse=True)
    per_day = max(1, round(len(order) / len(days)))
    margin = unit_margin(
        model_loss[order],
        base_loss[order],
        vs,
        unit="test window (absolute error, mean over its steps; in date order, tickers within a day)",
        block=BLOCK_DAYS * per_day,
        note=f"moving blocks of {BLOCK_DAYS} trading days x {per_day} windows a day",
    )
    diff = model_loss[order] - base_loss[order]
    counts = np.bincount(day_of)
    daily = np.bincount(day_of, weights=diff) / counts
    h = actual.shape[1]
    dm = diebold_mariano(daily, np.zeros_like(daily), lags=h - 1).as_dict()
    dm.update(vs=vs, loss="absolute error, mean over the steps; per origin date, mean over tickers")
    return margin, dm
