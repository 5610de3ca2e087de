"""`seqpipe predict` on a stock model: OHLCV CSVs in, the next H forecasts per ticker out.

Features and normalization come from the checkpoint's data_info (what preprocessing fitted), so a
forecast is computed exactly as the evaluation's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from seqpipe.domains.stocks.features import causal_features
from seqpipe.domains.stocks.source.read import read_ohlcv
from seqpipe.domains.stocks.source.schema import Rules
from seqpipe.errors import SeqpipeError


@torch.no_grad()
def predict(model: torch.nn.Module, paths: list[str]) -> list[dict[str, Any]]:
    """OHLCV CSV(s) -> the next H forecasts per ticker, from its last ``lookback`` days."""
    info = model.hparams.get("data_info") or {}
    L, H = int(info["lookback"]), int(info["horizon"])
    rules = {k: v for k, v in info["rules"].items() if k != "short_series"}
    norm = info["normalization"]
    mean, std = np.asarray(norm["mean"]), np.asarray(norm["std"])
    model.eval()
    results = []
    for s in read_ohlcv(paths, Rules(**rules)):
        feats, _, used = causal_features(s, info["features"], info["price_column"])
        feats = feats[int(info["warmup"]) :]
        if len(feats) < L:
            raise SeqpipeError(
                f"{len(s)} rows; a forecast needs {L} after the {info['warmup']}-day feature warmup "
                f"({L + int(info['warmup'])} in all) (ticker {s.ticker})",
                where=s.file,
                fix="pass a longer price history",
            )
        x = torch.from_numpy(((feats[-L:] - mean) / std).astype(np.float32))[None]
        y = model.member_outputs(x) if hasattr(model, "member_outputs") else model(x)[0][None]
        y = y[:, 0].numpy().astype(np.float64) * float(info["target_scale"])
        if info["target"] == "volatility":
            y = np.maximum(y, 0.0)  # as in evaluation: a volatility is >= 0
        results.append(
            {
                "file": s.file,
                "ticker": s.ticker,
                "origin_date": str(s.dates[-1]),
                "target": info["target"],
                "units": "percent log return"
                if info["target"] == "returns"
                else "percent daily realized volatility over 1..h days",
                "steps": list(range(1, H + 1)),
                "forecast": [round(float(v), 6) for v in y.mean(0)],
                "forecast_seed_std": [round(float(v), 6) for v in (y.std(0, ddof=1) if len(y) > 1 else np.zeros(H))],
                "price_column": used,
            }
        )
    return results
