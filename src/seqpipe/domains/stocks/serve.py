"""Serving a stock forecaster: OHLCV rows of one or more tickers -> each ticker's next H forecasts.

The rows (``ticker,date,open,high,low,close,volume``, optionally ``adj_close``) are written as a temporary
long-table CSV and read back by ``task.predict``: the same reader and repair rules as the training data, the
features computed the way the domain computes them (train normalization from the checkpoint), the forecast made
from each ticker's last ``lookback`` days after the features' warmup.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from seqpipe.domains.stocks.task import predict
from seqpipe.errors import SeqpipeError

COLUMNS = ("ticker", "date", "open", "high", "low", "close", "volume")
OUTPUTS = ("ticker", "origin_date", "target", "units", "forecast", "forecast_seed_std")


def serve(model: torch.nn.Module, df: pd.DataFrame) -> pd.DataFrame:
    """One row a ticker: ``forecast`` (H values, steps 1..H) made at ``origin_date`` (its last row)."""
    present = [c for c in (*COLUMNS, "adj_close") if c in df and not df[c].isna().all()]
    missing = [c for c in COLUMNS if c not in present]
    if missing:
        raise SeqpipeError(
            f"OHLCV rows need the column(s) {missing}, got {list(df.columns)}",
            where="request",
            fix="send rows of ticker,date,open,high,low,close,volume (optionally adj_close), oldest first",
        )
    with tempfile.TemporaryDirectory(prefix="seqpipe-serve-") as tmp:
        csv = Path(tmp) / "request.csv"
        df[present].to_csv(csv, index=False)
        results = predict(model, [str(csv)])
    return pd.DataFrame({k: [r[k] for r in results] for k in OUTPUTS})


def serve_example(info: dict[str, Any]) -> pd.DataFrame:
    """One synthetic ticker with just enough business days for a forecast (feature warmup + lookback + a week)."""
    n = int(info["warmup"]) + int(info["lookback"]) + 5
    rng = np.random.default_rng(0)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    spread = np.abs(rng.normal(0.0, 0.005, n)) + 0.002
    frame = pd.DataFrame(
        {
            "ticker": "EXAMPLE",
            "date": pd.bdate_range("2024-01-01", periods=n).strftime("%Y-%m-%d"),
            "open": np.round(close * (1 + rng.normal(0.0, 0.002, n)), 4),
            "high": np.round(close * (1 + spread), 4),
            "low": np.round(close * (1 - spread), 4),
            "close": np.round(close, 4),
            "volume": rng.integers(1_000_000, 5_000_000, n).astype(np.float64),
        }
    )
    if info.get("price_column") == "adj_close":
        frame["adj_close"] = frame["close"]
    return frame
