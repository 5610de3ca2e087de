"""Causal daily stock features, date splits with an embargo, and forecast targets (the formulas in
seqpipe.domains.stocks.datamodule' docstring).

Separate from the store writer and the datamodule because these are the pure, testable functions
whose causality is the point (every value at row t from rows <= t), shared by preprocessing, the
windows, the baselines and the evaluation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from seqpipe.domains.stocks.source.schema import TickerSeries
from seqpipe.errors import SeqpipeError

DEFAULT_FEATURES = ("log_return", "hl_range", "volume_change", "realized_vol_5", "realized_vol_22")
TARGETS = ("returns", "volatility")
EMBARGO = -1  # row code of rows that belong to no split
_RV = re.compile(r"^realized_vol_(\d+)$")


def feature_warmup(features: Sequence[str]) -> int:
    """Leading rows of a ticker where some feature is undefined (dropped)."""
    w = 1
    for f in features:
        m = _RV.match(f)
        if m:
            w = max(w, int(m.group(1)))
        elif f not in ("log_return", "hl_range", "volume_change"):
            raise SeqpipeError(
                f"unknown feature {f!r}",
                where="data.features",
                fix="use log_return, hl_range, volume_change, realized_vol_<days>",
            )
    return w


def causal_features(
    s: TickerSeries, features: Sequence[str], price_column: str = "auto"
) -> tuple[np.ndarray, np.ndarray, str]:
    """(features (n, F), percent log returns (n,), price column used) for every row, NaN where undefined.

    Every value at row t is a function of rows 0..t only (tests/domains/stocks/test_stocks.py proves it).
    """
    price, used = s.price(price_column)
    ret = np.full(len(s), np.nan)
    ret[1:] = 100.0 * np.diff(np.log(price))
    cols = []
    for f in features:
        if f == "log_return":
            cols.append(ret)
        elif f == "hl_range":
            cols.append(100.0 * np.abs(np.log(s.high / s.low)))
        elif f == "volume_change":
            factor = s.close / price if used == "adj_close" else 1.0  # split adjustment of shares
            lv = np.log(s.volume * factor + 1.0)
            vc = np.full(len(s), np.nan)
            vc[1:] = np.diff(lv)
            cols.append(vc)
        else:
            k = int(_RV.match(f).group(1))
            sq = np.where(np.isnan(ret), np.nan, ret**2)
            c = np.concatenate([[0.0], np.cumsum(np.nan_to_num(sq))])
            rv = np.full(len(s), np.nan)
            rv[k:] = np.sqrt((c[k + 1 :] - c[1:-k]) / k)  # days t-k+1..t, all with a defined return
            cols.append(rv)
    return np.stack(cols, axis=1), ret, used


def split_codes(dates: np.ndarray, val_start: np.datetime64, test_start: np.datetime64, embargo: int) -> np.ndarray:
    """Row -> 0/1/2 (train/val/test) by date, with the first ``embargo`` rows of val and test set to -1."""
    code = np.where(dates < val_start, 0, np.where(dates < test_start, 1, 2)).astype(np.int8)
    for s in (1, 2):
        rows = np.flatnonzero(code == s)
        code[rows[:embargo]] = EMBARGO
    return code


def make_targets(future: np.ndarray, kind: str) -> np.ndarray:
    """Future percent returns (N, H) -> targets (N, H): the returns, or h-day realized vol for h = 1..H."""
    if kind == "returns":
        return future
    if kind == "volatility":
        h = np.arange(1, future.shape[-1] + 1)
        return np.sqrt(np.cumsum(future**2, axis=-1) / h)
    raise SeqpipeError(f"unknown target {kind!r}", where="data.target", fix=f"use one of {list(TARGETS)}")
