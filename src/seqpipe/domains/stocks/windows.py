"""Forecast windows over the stocks store: lookback feature rows in, H future returns (or realized
volatilities) out, gathered by index arithmetic and never materialized.

Separate from the datamodule because the evaluation and the baselines index the same windows
(origins, future returns) without a datamodule's loaders.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from seqpipe.data.windows import WindowIndex, gather_windows
from seqpipe.domains.stocks.features import TARGETS, make_targets
from seqpipe.errors import SeqpipeError


class ForecastWindows(Dataset):
    """Window i: inputs = features[s : s+L] (L, F); targets from returns[s+L : s+L+H] (H,).

    ``origin`` is the row of the last input day (the forecast origin). Batches are gathered by
    index arithmetic (``__getitems__``), never materialized.
    """

    def __init__(
        self,
        features: np.ndarray,
        returns: np.ndarray,
        offsets: np.ndarray,
        lengths: np.ndarray,
        lookback: int,
        horizon: int,
        target: str,
        target_scale: float,
        stride: int = 1,
    ):
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
        return {
            "inputs": torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
            "targets": torch.from_numpy(y.astype(np.float32)),
            "origin": torch.from_numpy(origin.astype(np.int64)),
        }

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([i]).items()}


def collate_forecasts(samples: Any) -> dict[str, torch.Tensor]:
    if isinstance(samples, dict):  # already a batch (ForecastWindows.__getitems__)
        return samples
    return {k: torch.stack([s[k] for s in samples]) for k in samples[0]}
