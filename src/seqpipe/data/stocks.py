"""Stocks: OHLCV CSVs -> causal daily features in the prepared store -> leakage-free forecast windows.

Per ticker and day t (all computed from rows <= t only; returns in percent log units):

    log_return        100 * log(P_t / P_{t-1})      P = Adj Close when present, else Close
    hl_range          100 * log(High_t / Low_t)
    volume_change     log((V_t + 1) / (V_{t-1} + 1)), V split-adjusted by Close/Adj Close
    realized_vol_<k>  sqrt(mean of log_return^2 over days t-k+1..t)

The first ``warmup`` rows of a ticker (where a feature is undefined) are dropped. Splits are by
date, the same for every ticker: train = date < val_start, val = val_start <= date < test_start,
test = date >= test_start; the first ``embargo`` (>= lookback + horizon) rows of val and of test
belong to no split. Feature normalization (mean/std) and the target scale are fitted on train rows
only and stored in meta.json.

The store keeps every row of a ticker contiguously (``features``, ``returns``, ``dates``); records
are ticker x split slices (embargo rows lie between records, still readable as history by the
GARCH and trailing-volatility baselines). A sample is a window of ``lookback + horizon`` rows inside
one record: inputs = the first ``lookback`` feature rows (last one = the forecast origin t), targets
from the next ``horizon`` returns (never an input):

    target="returns"     r_{t+1} .. r_{t+H}
    target="volatility"  RV_h = sqrt(mean(r_{t+1}^2 .. r_{t+h}^2)) for h = 1..H (the h-day realized vol)

both divided by ``target_scale`` (train std of returns) for training; evaluation multiplies back.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from seqpipe.data.module import SequenceDataModule
from seqpipe.data.spec import DataSpec
from seqpipe.data.store import SPLIT_CODE, SPLITS, PreparedStore, StoreWriter, check_settings, fingerprint
from seqpipe.data.windows import WindowIndex, gather_windows
from seqpipe.errors import SeqpipeError
from seqpipe.sources.stocks.read import read_ohlcv, resolve_files
from seqpipe.sources.stocks.schema import Rules, TickerSeries

log = logging.getLogger(__name__)

DEFAULT_FEATURES = ("log_return", "hl_range", "volume_change", "realized_vol_5", "realized_vol_22")
TARGETS = ("returns", "volatility")
EMBARGO = -1  # row code of rows that belong to no split
_RV = re.compile(r"^realized_vol_(\d+)$")


# -- features ---------------------------------------------------------------------------------
def feature_warmup(features: Sequence[str]) -> int:
    """Leading rows of a ticker where some feature is undefined (dropped)."""
    w = 1
    for f in features:
        m = _RV.match(f)
        if m:
            w = max(w, int(m.group(1)))
        elif f not in ("log_return", "hl_range", "volume_change"):
            raise SeqpipeError(f"unknown feature {f!r}", where="data.features",
                               fix="use log_return, hl_range, volume_change, realized_vol_<days>")
    return w


def causal_features(s: TickerSeries, features: Sequence[str], price_column: str = "auto") -> tuple[np.ndarray, np.ndarray, str]:
    """(features (n, F), percent log returns (n,), price column used) for every row, NaN where undefined.

    Every value at row t is a function of rows 0..t only (tests/test_stocks.py proves it).
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


# -- preprocessing ----------------------------------------------------------------------------
def prepare_stocks(
    source: str | Sequence[str],
    out_dir: str | Path,
    *,
    features: Sequence[str] = DEFAULT_FEATURES,
    lookback: int = 60,
    horizon: int = 5,
    embargo: int | None = None,
    val_start: str = "2009-07-01",
    test_start: str = "2011-01-01",
    price_column: str = "auto",
    rules: Rules = Rules(),
    short_series: str = "error",
) -> PreparedStore:
    """Read, validate, featurize and split every ticker; fit normalization on train rows; write the store."""
    settings = stocks_settings(source, features=list(features), lookback=lookback, horizon=horizon, embargo=embargo,
                               val_start=val_start, test_start=test_start, price_column=price_column, rules=rules,
                               short_series=short_series)
    if lookback < 1 or horizon < 1:
        raise SeqpipeError(f"lookback ({lookback}) and horizon ({horizon}) must be >= 1", where="data.lookback/horizon")
    need = lookback + horizon
    embargo = need if embargo is None else int(embargo)
    if embargo < need:
        raise SeqpipeError(f"embargo {embargo} is shorter than lookback + horizon = {need}", where="data.embargo",
                           fix=f"set data.embargo >= {need} (or leave it unset)")
    if short_series not in ("error", "skip"):
        raise SeqpipeError(f"unknown rule short_series={short_series!r}", where="data.short_series", fix="use error or skip")
    val_start, test_start = str(val_start), str(test_start)
    try:
        vs, ts = np.datetime64(val_start, "D"), np.datetime64(test_start, "D")
    except ValueError as e:
        raise SeqpipeError(f"split dates must be ISO dates like 2011-01-01 ({e})", where="data.val_start/test_start") from e
    if not vs < ts:
        raise SeqpipeError(f"val_start {val_start} must come before test_start {test_start}", where="data.val_start")
    features = list(features)
    warm = feature_warmup(features)
    files = resolve_files(source)
    series = read_ohlcv(files, rules)

    kept, skipped, repairs = [], [], {}
    for s in series:
        if s.repairs:
            repairs[s.ticker] = dict(s.repairs)
        feats, ret, used = causal_features(s, features, price_column)
        n = len(s) - warm
        if n < need + embargo:
            problem = (f"series too short: {len(s)} rows, {n} after the {warm}-row feature warmup; needs at least "
                       f"lookback + horizon + embargo = {need + embargo} (ticker {s.ticker})")
            if short_series == "error":
                raise SeqpipeError(problem, where=s.file,
                                   fix="supply a longer series, shorten data.lookback/horizon, or set data.short_series: skip")
            skipped.append({"ticker": s.ticker, "file": s.file, "rows": len(s), "reason": problem})
            continue
        kept.append((s, feats[warm:], ret[warm:], used, split_codes(s.dates[warm:], vs, ts, embargo)))
    if not kept:
        raise SeqpipeError("no ticker is long enough", where=", ".join(map(str, files[:3])),
                           fix="supply longer series or shorten data.lookback/horizon")
    train = np.concatenate([f[c == 0] for _, f, _, _, c in kept])
    train_ret = np.concatenate([r[c == 0] for _, _, r, _, c in kept])
    if len(train) < need:
        raise SeqpipeError(f"only {len(train)} train rows before val_start {val_start}",
                           where=", ".join(map(str, files[:3])), fix="move data.val_start later")
    mean, std = train.mean(0), train.std(0)
    std = np.where(std > 0, std, 1.0)
    target_scale = float(train_ret.std()) or 1.0

    fp = fingerprint(files, extra=dict(features=features, lookback=lookback, horizon=horizon, embargo=embargo,
                                       val_start=val_start, test_start=test_start, price_column=price_column,
                                       rules=rules.__dict__, short_series=short_series))
    offsets, lengths, splits, tick = [], [], [], []
    tickers, split_rows = [], {name: 0 for name in SPLITS}
    with StoreWriter(out_dir, domain="stocks") as w:
        for t, (s, f, r, used, code) in enumerate(kept):
            base = w.append("features", ((f - mean) / std).astype(np.float32))
            w.append("returns", r.astype(np.float32))
            w.append("dates", (s.dates[warm:] - np.datetime64("1970-01-01", "D")).astype(np.int32))
            for sp in range(3):
                rows = np.flatnonzero(code == sp)
                if len(rows):
                    offsets.append(base + int(rows[0]))
                    lengths.append(len(rows))
                    splits.append(sp)
                    tick.append(t)
                    split_rows[SPLITS[sp]] += len(rows)
            tickers.append({"ticker": s.ticker, "file": s.file, "offset": base, "rows": len(f), "price_column": used,
                            "first_date": str(s.dates[warm]), "last_date": str(s.dates[-1]),
                            "rows_per_split": {SPLITS[sp]: int((code == sp).sum()) for sp in range(3)},
                            "embargo_rows": int((code == EMBARGO).sum())})
        w.set_index(offset=offsets, length=lengths, split=splits, ticker=tick)
        spec = DataSpec(input="features", target="regression", feature_dim=len(features), output_dim=horizon,
                        max_len=lookback, causal=True)
        w.commit({
            "name": Path(out_dir).name,
            "source": [str(f) for f in files],
            "fingerprint": fp,
            "spec": spec.to_dict(),
            "settings": settings,
            "date_formats": {s.ticker: s.date_format for s, *_ in kept},
            "repairs": repairs,
            "skipped": skipped,
            "stocks": {
                "features": features,
                "lookback": lookback,
                "horizon": horizon,
                "embargo": embargo,
                "warmup": warm,
                "val_start": val_start,
                "test_start": test_start,
                "price_column": price_column,
                "rules": dict(rules.__dict__, short_series=short_series),
                "normalization": {"mean": mean.tolist(), "std": std.tolist(), "fitted_on": "train rows"},
                "target_scale": target_scale,
                "units": "percent log returns",
                "tickers": tickers,
                "split_rows": split_rows,
                "repairs": repairs,
                "skipped": [k["ticker"] for k in skipped],
            },
        })
    for ticker, rep in repairs.items():
        log.info("stocks repairs %s: %s", ticker, rep)
    for k in skipped:
        log.warning("stocks skipped %s: %s", k["ticker"], k["reason"])
    return PreparedStore.open(out_dir)


def stocks_settings(source: str | Sequence[str], *, features: Sequence[str], lookback: int, horizon: int,
                    embargo: int | None, val_start: str, test_start: str, price_column: str, rules: Rules,
                    short_series: str) -> dict[str, Any]:
    """The preprocessing settings a stocks store records in meta.json["settings"] (compared by fit/evaluate)."""
    return {"source": source if isinstance(source, str) else [str(x) for x in source], "features": list(features),
            "lookback": lookback, "horizon": horizon, "embargo": embargo, "val_start": str(val_start),
            "test_start": str(test_start), "price_column": price_column, "short_series": short_series,
            **{k: v for k, v in rules.__dict__.items()}}


# -- samples ----------------------------------------------------------------------------------
class ForecastWindows(Dataset):
    """Window i: inputs = features[s : s+L] (L, F); targets from returns[s+L : s+L+H] (H,).

    ``origin`` is the row of the last input day (the forecast origin). Batches are gathered by
    index arithmetic (``__getitems__``), never materialized.
    """

    def __init__(self, features: np.ndarray, returns: np.ndarray, offsets: np.ndarray, lengths: np.ndarray,
                 lookback: int, horizon: int, target: str, target_scale: float, stride: int = 1):
        if target not in TARGETS:
            raise SeqpipeError(f"unknown target {target!r}", where="data.target", fix=f"use one of {list(TARGETS)}")
        self.features, self.returns = features, returns
        self.lookback, self.horizon, self.target, self.scale = lookback, horizon, target, target_scale
        self.index = WindowIndex(offsets, lengths, lookback + horizon, stride)

    def __len__(self) -> int:
        return len(self.index)

    def origins(self, i: np.ndarray | None = None) -> np.ndarray:
        """Row of the forecast origin (last input day) of windows ``i`` (default: all, in order)."""
        i = np.arange(len(self)) if i is None else np.asarray(i)
        return self.index.starts(i) + self.lookback - 1

    def future_returns(self, origins: np.ndarray) -> np.ndarray:
        """Percent returns r_{t+1..t+H} after each origin: (N, H)."""
        return gather_windows(self.returns, np.asarray(origins) + 1, self.horizon).astype(np.float64)

    def __getitems__(self, idx: list[int]) -> dict[str, torch.Tensor]:
        idx = np.asarray(idx)
        starts = self.index.starts(idx)
        x = gather_windows(self.features, starts, self.lookback)
        origin = starts + self.lookback - 1
        y = make_targets(self.future_returns(origin), self.target) / self.scale
        return {"inputs": torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                "targets": torch.from_numpy(y.astype(np.float32)),
                "origin": torch.from_numpy(origin.astype(np.int64))}

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([i]).items()}


def collate_forecasts(samples: Any) -> dict[str, torch.Tensor]:
    if isinstance(samples, dict):  # already a batch (ForecastWindows.__getitems__)
        return samples
    return {k: torch.stack([s[k] for s in samples]) for k in samples[0]}


class StockDataModule(SequenceDataModule):
    """Daily OHLCV forecasting data: lookback windows of causal features -> H-step targets.

    Args:
        source: a folder of OHLCV CSVs (one a ticker), a CSV (optionally a long table with a Ticker
            column), or a list. Default: data/raw/stocks, exported by the `stocks_raw` DVC stage.
        prepared_dir: where the prepared store is written / read.
        target: "returns" (next H log returns) or "volatility" (h-day realized vol, h = 1..H).
        lookback: input days a window; horizon: H, days forecast (one output each).
        features: causal daily features (see the module docstring).
        val_start, test_start: split dates (ISO), the same for every ticker.
        embargo: rows dropped at the start of val and of test (default and minimum: lookback + horizon).
        price_column: "auto" (Adj Close if present, else Close), "adj_close" or "close".
        nonfinite, unsorted, duplicates, gaps, max_gap_days: bad-input rules (seqpipe.sources.stocks.Rules).
        date_format: strptime pattern of the files' dates (e.g. "%d/%m/%Y"); None detects one format a file
            and refuses an ambiguous day/month order.
        max_unsorted_rows: ``unsorted: sort`` repairs at most this many rows out of date order.
        short_series: "error" or "skip" a ticker shorter than lookback + horizon + embargo (+ warmup).
        stride: step between training windows (evaluation always uses every origin).
        batch_size, num_workers, seed, rebuild: see SequenceDataModule.
    """

    def __init__(
        self,
        source: str | list[str] = "data/raw/stocks",
        prepared_dir: str = "data/prepared/stocks",
        target: str = "returns",
        lookback: int = 60,
        horizon: int = 5,
        features: list[str] | tuple[str, ...] = DEFAULT_FEATURES,
        val_start: str = "2009-07-01",
        test_start: str = "2011-01-01",
        embargo: int | None = None,
        price_column: str = "auto",
        nonfinite: str = "drop",
        unsorted: str = "sort",
        duplicates: str = "error",
        gaps: str = "error",
        max_gap_days: int = 10,
        date_format: str | None = None,
        max_unsorted_rows: int = 5,
        short_series: str = "error",
        stride: int = 1,
        batch_size: int = 256,
        num_workers: int = 0,
        seed: int = 0,
        rebuild: bool = False,
    ):
        super().__init__(prepared_dir, batch_size, num_workers, seed, rebuild)
        self.save_hyperparameters()
        if target not in TARGETS:
            raise SeqpipeError(f"unknown target {target!r}", where="data.target", fix=f"use one of {list(TARGETS)}")
        self.target, self.lookback, self.horizon, self.stride = target, lookback, horizon, stride
        self.features = list(features)
        self.val_start, self.test_start = str(val_start), str(test_start)  # YAML may hand in date objects
        self.rules = Rules(nonfinite=nonfinite, unsorted=unsorted, duplicates=duplicates, gaps=gaps,
                           max_gap_days=max_gap_days, date_format=date_format, max_unsorted_rows=max_unsorted_rows)

    def build_store(self) -> None:
        hp = self.hparams
        prepare_stocks(hp.source, self.prepared_dir, features=self.features, lookback=hp.lookback, horizon=hp.horizon,
                       embargo=hp.embargo, val_start=self.val_start, test_start=self.test_start,
                       price_column=hp.price_column, rules=self.rules, short_series=hp.short_series)

    def preprocessing_settings(self) -> dict[str, Any]:
        """The settings this config would record in meta.json["settings"] (see store.check_settings)."""
        hp = self.hparams
        return stocks_settings(hp.source, features=self.features, lookback=hp.lookback, horizon=hp.horizon,
                               embargo=hp.embargo, val_start=self.val_start, test_start=self.test_start,
                               price_column=hp.price_column, rules=self.rules, short_series=hp.short_series)

    def _check_store(self) -> dict[str, Any]:
        m = self.store.meta["stocks"]
        for key, want in (("lookback", self.lookback), ("horizon", self.horizon), ("features", self.features),
                          ("val_start", self.val_start), ("test_start", self.test_start)):
            if m[key] != want:
                raise SeqpipeError(f"prepared with {key}={m[key]!r}, this config asks for {want!r}",
                                   where=self.prepared_dir, fix="rerun `seqpipe preprocess` (or `dvc repro`) with this config")
        check_settings(self.store.meta, self.preprocessing_settings(), self.prepared_dir)
        return m

    def make_dataset(self, split: str) -> ForecastWindows:
        m = self._check_store()
        rows = self.store.records(split)
        return ForecastWindows(self.store.arrays["features"], self.store.arrays["returns"],
                               self.store.index["offset"][rows], self.store.index["length"][rows],
                               self.lookback, self.horizon, self.target, m["target_scale"],
                               stride=self.stride if split == "train" else 1)

    def collate(self, samples: Any) -> dict[str, torch.Tensor]:
        return collate_forecasts(samples)

    def data_info(self) -> dict[str, Any]:
        """What predict needs from a checkpoint: features, normalization, scale, target, rules."""
        m = self.meta["stocks"]
        keys = ("features", "lookback", "horizon", "warmup", "price_column", "rules", "normalization", "target_scale", "units")
        return {"domain": "stocks", "target": self.target, **{k: m[k] for k in keys},
                "tickers": [t["ticker"] for t in m["tickers"]]}

    # -- helpers for evaluation and baselines --------------------------------------------------
    def ticker_of(self, rows: np.ndarray) -> np.ndarray:
        """Ticker number (position in meta.stocks.tickers) of flat rows."""
        starts = np.array([t["offset"] for t in self.meta["stocks"]["tickers"]])
        return np.searchsorted(starts, np.asarray(rows), side="right") - 1

    def dates_of(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.store.arrays["dates"])[np.asarray(rows)].astype("datetime64[D]")
