"""Forecasting baselines on the stock windows, fitted on train rows only (what a forecaster tries first).

    returns:     zero, persistence (r_t for every step), train_mean (per ticker and step)
    volatility:  persistence (the last observed h-day realized vol), train_mean (per ticker and step),
                 trailing_rv (realized vol of the last ``trailing_window`` days),
                 garch11 (arch's GARCH(1,1), constant mean, fitted per ticker on train returns, then
                 filtered through the whole series with those fixed parameters;
                 RV_h forecast = sqrt(mean of sigma^2_{t+j|t}, j = 1..h)),
                 har_levels / har_log / har_log_range (seqpipe.domains.stocks.har: HAR regressions, one a
                 horizon step, pooled or per ticker as val decides)
The returns target keeps its three: HAR models a volatility, it says nothing about a return's sign.

Scored by seqpipe.domains.stocks.task (and .forecast) exactly as the models are.
"""

from __future__ import annotations

import numpy as np

from seqpipe.domains.stocks.datamodule import StockDataModule
from seqpipe.domains.stocks.features import make_targets
from seqpipe.domains.stocks.har import fit_har, har_forecasts
from seqpipe.domains.stocks.windows import ForecastWindows
from seqpipe.errors import SeqpipeError


def _ticker_slices(dm: StockDataModule) -> list[tuple[int, int]]:
    return [(t["offset"], t["offset"] + t["rows"]) for t in dm.meta["stocks"]["tickers"]]


def fit_garch(dm: StockDataModule) -> dict[str, list[float]]:
    """GARCH(1,1) parameters [mu, omega, alpha, beta] per ticker, fitted on its train rows only."""
    from arch import arch_model

    rets = np.asarray(dm.store.arrays["returns"], dtype=np.float64)
    params = {}
    rows = dm.store.records("train")
    for r in rows:
        t = int(dm.store.index["ticker"][r])
        off, n = int(dm.store.index["offset"][r]), int(dm.store.index["length"][r])
        res = arch_model(rets[off : off + n], mean="Constant", vol="GARCH", p=1, q=1, rescale=False).fit(disp="off")
        params[dm.meta["stocks"]["tickers"][t]["ticker"]] = [float(v) for v in res.params.values]
    return params


def baseline_forecasts(
    dm: StockDataModule,
    ds: ForecastWindows,
    target: str,
    garch: dict[str, list[float]],
    trailing_window: int = 22,
    har: dict[str, dict] | None = None,
) -> dict[str, np.ndarray]:
    """(N, H) forecasts in percent units of every baseline for ``target`` on the windows of ``ds``
    (volatility: the HAR fits of ``har``, fitted here when None)."""
    from arch import arch_model

    H = ds.horizon
    rets = np.asarray(dm.store.arrays["returns"], dtype=np.float64)
    origins = ds.origins()
    tick = dm.ticker_of(origins)
    slices = _ticker_slices(dm)
    names = [t["ticker"] for t in dm.meta["stocks"]["tickers"]]
    csum = np.zeros(len(rets) + 1)
    csum[1:] = np.cumsum(rets**2)

    first = np.array([slices[t][0] for t in tick])

    def trailing_rv(k: np.ndarray) -> np.ndarray:
        """(N, len(k)): sqrt(mean r^2 over days t-k+1..t), never reaching before the ticker's first row."""
        o = origins[:, None]
        lo = np.maximum(o - np.asarray(k)[None, :] + 1, first[:, None])
        return np.sqrt((csum[o + 1] - csum[lo]) / (o + 1 - lo))

    # train-mean statistics per ticker, from the train windows only
    train = dm.make_dataset("train")
    t_orig = train.origins()
    t_tick = dm.ticker_of(t_orig)
    t_target = make_targets(train.future_returns(t_orig), target)
    overall = t_target.mean(0)
    mean_by_ticker = np.stack(
        [t_target[t_tick == t].mean(0) if (t_tick == t).any() else overall for t in range(len(names))]
    )

    out: dict[str, np.ndarray] = {}
    if target == "returns":
        out["zero"] = np.zeros((len(origins), H))
        out["persistence"] = np.repeat(rets[origins][:, None], H, axis=1)
        out["train_mean"] = mean_by_ticker[tick]
        return out
    out["persistence"] = trailing_rv(np.arange(1, H + 1))
    out["train_mean"] = mean_by_ticker[tick]
    out["trailing_rv"] = np.repeat(trailing_rv(np.array([trailing_window])), H, axis=1)
    g = np.full((len(origins), H), np.nan)
    for t in np.unique(tick):
        if names[t] not in garch:
            raise SeqpipeError(
                f"no GARCH fit for ticker {names[t]} (it has no train rows)",
                where=dm.prepared_dir,
                fix="move data.val_start later so every ticker has train rows",
            )
        lo, hi = slices[t]
        sel = np.flatnonzero(tick == t)
        local = origins[sel] - lo
        fixed = arch_model(rets[lo:hi], mean="Constant", vol="GARCH", p=1, q=1, rescale=False).fix(garch[names[t]])
        var = fixed.forecast(horizon=H, start=int(local.min()), reindex=False).variance.to_numpy()
        var = var[local - local.min()]
        g[sel] = np.sqrt(np.cumsum(var, axis=1) / np.arange(1, H + 1))
    out["garch11"] = g
    out.update(har_forecasts(dm, ds, fit_har(dm) if har is None else har))
    return out
