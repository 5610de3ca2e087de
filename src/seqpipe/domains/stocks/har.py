"""HAR baselines of realized volatility (Corsi 2009): the first model every volatility forecaster fits.

At the forecast origin t the regressors are the realized vol of the last day, week and month,
RV_1 = |r_t|, RV_5 and RV_22 (sqrt of the mean squared percent return over the days t-k+1..t, never
reaching before the ticker's first row), and for ``har_log_range`` also the high-low range of day t
and its mean over the last five days (the ``hl_range`` feature, read back from the store). One
ordinary least-squares regression a horizon step h (target: the h-day realized vol the models
forecast), fitted on the train windows only:

    har_levels       RV_{t+1..t+h} = b0 + b1 RV_1 + b2 RV_5 + b3 RV_22            (forecast clipped at 0)
    har_log          log RV_{t+1..t+h} on the logs of the same; forecast exp(fit): a conditional median,
                     the right point forecast for MAE
    har_log_range    har_log plus log HL_t and log mean(HL_{t-4..t})

Each is fitted pooled over tickers and per ticker; which of the two is used is chosen on the val
windows' MAE (``fit_har`` reports both scores and the choice). Logs take max(x, LOG_FLOOR) first:
a day with a zero return (RV_1 = 0) would otherwise have no log.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seqpipe.domains.stocks.features import make_targets
from seqpipe.domains.stocks.windows import ForecastWindows

VARIANTS = ("har_levels", "har_log", "har_log_range")
LOG_FLOOR = 0.01  # percent: realized vol of 0.01% a day, far below any real day's
MIN_ROWS = 50  # a ticker with fewer train windows uses the pooled fit


def ols(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares coefficients (1 + k, H) of y (N, H) on [1, x] (N, k): one regression a column of y."""
    design = np.hstack([np.ones((len(x), 1)), x])
    return np.linalg.lstsq(design, y, rcond=None)[0]


def regressors(dm: Any, origins: np.ndarray, with_range: bool) -> np.ndarray:
    """(N, 3 or 5): RV_1, RV_5, RV_22 at each origin (+ HL_t and its 5-day mean), in percent."""
    rets = np.asarray(dm.store.arrays["returns"], dtype=np.float64)
    tickers = dm.meta["stocks"]["tickers"]
    first = np.array([tickers[t]["offset"] for t in dm.ticker_of(origins)])
    o = np.asarray(origins)

    def trailing_mean(csum: np.ndarray, k: int) -> np.ndarray:
        lo = np.maximum(o - k + 1, first)
        return (csum[o + 1] - csum[lo]) / (o + 1 - lo)

    sq = np.concatenate([[0.0], np.cumsum(rets**2)])
    cols = [np.sqrt(trailing_mean(sq, k)) for k in (1, 5, 22)]
    if with_range:
        hl = range_feature(dm)
        cs = np.concatenate([[0.0], np.cumsum(hl)])
        cols += [hl[o], trailing_mean(cs, 5)]
    return np.stack(cols, axis=1)


def range_feature(dm: Any) -> np.ndarray:
    """The high-low range of every row in percent, un-normalized from the stored features."""
    m = dm.meta["stocks"]
    j = m["features"].index("hl_range")
    col = np.asarray(dm.store.arrays["features"][:, j], dtype=np.float64)
    return col * m["normalization"]["std"][j] + m["normalization"]["mean"][j]


def _log(x: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(x, LOG_FLOOR))


def _design(variant: str, x: np.ndarray) -> np.ndarray:
    return x if variant == "har_levels" else _log(x)


def _forecast(variant: str, x: np.ndarray, coef: np.ndarray) -> np.ndarray:
    fit = np.hstack([np.ones((len(x), 1)), _design(variant, x)]) @ coef
    return np.maximum(fit, 0.0) if variant == "har_levels" else np.exp(fit)


def _windows(dm: Any, ds: ForecastWindows, with_range: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    origins = ds.origins()
    return regressors(dm, origins, with_range), dm.ticker_of(origins), origins


def _fits(variant: str, x: np.ndarray, y: np.ndarray, tick: np.ndarray, n_tickers: int) -> dict[str, Any]:
    """Pooled coefficients and per-ticker ones (the pooled ones where a ticker has too few windows)."""
    target = y if variant == "har_levels" else _log(y)
    pooled = ols(_design(variant, x), target)
    per = [
        ols(_design(variant, x[tick == t]), target[tick == t]) if (tick == t).sum() >= MIN_ROWS else pooled
        for t in range(n_tickers)
    ]
    return {"pooled": pooled, "per_ticker": np.stack(per)}


def _predict(variant: str, fits: dict[str, Any], pooling: str, x: np.ndarray, tick: np.ndarray) -> np.ndarray:
    if pooling == "pooled":
        return _forecast(variant, x, fits["pooled"])
    out = np.empty((len(x), fits["pooled"].shape[1]))
    for t in np.unique(tick):
        out[tick == t] = _forecast(variant, x[tick == t], fits["per_ticker"][t])
    return out


def fit_har(dm: Any) -> dict[str, dict[str, Any]]:
    """Every variant fitted on the train windows, pooled and per ticker, the pooling chosen on val MAE.

    Returns {variant: {"pooling", "val_mae": {pooled, per_ticker}, "coef"}}; ``coef`` is the chosen fit's
    (1 + k, H) coefficients (pooled) or {ticker: coefficients}. Variants need their features: without
    ``hl_range`` among the store's features there is no ``har_log_range``.
    """
    names = [t["ticker"] for t in dm.meta["stocks"]["tickers"]]
    train, val = dm.make_dataset("train"), dm.make_dataset("val")
    out: dict[str, dict[str, Any]] = {}
    for variant in VARIANTS:
        with_range = variant == "har_log_range"
        if with_range and "hl_range" not in dm.meta["stocks"]["features"]:
            continue
        x, tick, orig = _windows(dm, train, with_range)
        fits = _fits(variant, x, make_targets(train.future_returns(orig), "volatility"), tick, len(names))
        vx, vtick, vorig = _windows(dm, val, with_range)
        vy = make_targets(val.future_returns(vorig), "volatility")
        val_mae = {p: float(np.abs(_predict(variant, fits, p, vx, vtick) - vy).mean()) for p in fits}
        pooling = min(val_mae, key=val_mae.get)
        per_ticker = dict(zip(names, fits["per_ticker"].tolist(), strict=True))
        coef = fits["pooled"].tolist() if pooling == "pooled" else per_ticker
        out[variant] = {"pooling": pooling, "val_mae": val_mae, "coef": coef, "_fits": fits}
    return out


def har_forecasts(dm: Any, ds: ForecastWindows, har: dict[str, dict[str, Any]]) -> dict[str, np.ndarray]:
    """(N, H) forecasts of every fitted variant on the windows of ``ds``."""
    out = {}
    for variant, fit in har.items():
        x, tick, _ = _windows(dm, ds, variant == "har_log_range")
        out[variant] = _predict(variant, fit["_fits"], fit["pooling"], x, tick)
    return out


def har_report(har: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What a metrics or baselines file records of the fits: the pooling chosen, its val MAEs, coefficients."""
    return {v: {k: f[k] for k in ("pooling", "val_mae", "coef")} for v, f in har.items()}
