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

Modules: ``features`` (the causal features, date splits, targets), ``settings`` (what a store is prepared
with), ``prepare`` (the preprocess stage's store writer), ``windows`` (the samples); this one holds the datamodule.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from seqpipe.data.module import SequenceDataModule
from seqpipe.data.store import check_settings
from seqpipe.domains.stocks.features import DEFAULT_FEATURES, TARGETS
from seqpipe.domains.stocks.prepare import prepare_stocks, write_stock_store  # noqa: F401 -- prepare_stocks re-exported
from seqpipe.domains.stocks.settings import StockSettings
from seqpipe.domains.stocks.windows import ForecastWindows, collate_forecasts
from seqpipe.errors import SeqpipeError


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
        nonfinite, unsorted, duplicates, gaps, max_gap_days: bad-input rules (seqpipe.domains.stocks.source.Rules).
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
        self.settings = StockSettings.of(self.hparams)  # what the store is prepared with
        self.features = list(self.settings.features)
        self.val_start, self.test_start = self.settings.val_start, self.settings.test_start  # YAML may give dates
        self.rules = self.settings.rules

    def build_store(self) -> None:
        write_stock_store(self.settings, self.prepared_dir)

    def preprocessing_settings(self) -> dict[str, Any]:
        """The settings this config would record in meta.json["settings"] (see store.check_settings)."""
        return self.settings.recorded()

    def _check_store(self) -> dict[str, Any]:
        m = self.store.meta["stocks"]
        for key, want in (
            ("lookback", self.lookback),
            ("horizon", self.horizon),
            ("features", self.features),
            ("val_start", self.val_start),
            ("test_start", self.test_start),
        ):
            if m[key] != want:
                raise SeqpipeError(
                    f"prepared with {key}={m[key]!r}, this config asks for {want!r}",
                    where=self.prepared_dir,
                    fix="rerun `seqpipe preprocess` (or `dvc repro`) with this config",
                )
        check_settings(self.store.meta, self.preprocessing_settings(), self.prepared_dir)
        return m

    def make_dataset(self, split: str) -> ForecastWindows:
        m = self._check_store()
        rows = self.store.records(split)
        return ForecastWindows(
            self.store.arrays["features"],
            self.store.arrays["returns"],
            self.store.index["offset"][rows],
            self.store.index["length"][rows],
            self.lookback,
            self.horizon,
            self.target,
            m["target_scale"],
            stride=self.stride if split == "train" else 1,
        )

    def collate(self, samples: Any) -> dict[str, torch.Tensor]:
        return collate_forecasts(samples)

    def data_info(self) -> dict[str, Any]:
        """What predict needs from a checkpoint: features, normalization, scale, target, rules."""
        m = self.meta["stocks"]
        keys = (
            "features",
            "lookback",
            "horizon",
            "warmup",
            "price_column",
            "rules",
            "normalization",
            "target_scale",
            "units",
        )
        return {
            "domain": "stocks",
            "target": self.target,
            **{k: m[k] for k in keys},
            "tickers": [t["ticker"] for t in m["tickers"]],
        }

    # -- helpers for evaluation and baselines --------------------------------------------------
    def ticker_of(self, rows: np.ndarray) -> np.ndarray:
        """Ticker number (position in meta.stocks.tickers) of flat rows."""
        starts = np.array([t["offset"] for t in self.meta["stocks"]["tickers"]])
        return np.searchsorted(starts, np.asarray(rows), side="right") - 1

    def dates_of(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.store.arrays["dates"])[np.asarray(rows)].astype("datetime64[D]")
