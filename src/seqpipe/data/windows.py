"""Index arithmetic for samples: windows inside records, and ragged batches.

A window is (start, length) into a flat memory-mapped array; it is sliced at batch time and
never copied ahead of time. Windows are cut inside one record, so a window never crosses a
split, a document or a ticker boundary.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


class WindowIndex:
    """All windows of ``window`` rows, every ``stride`` rows, inside each record.

    Window ``i`` starts at ``starts(i)``; the mapping is a cumulative-count lookup, O(log records).
    """

    def __init__(self, offsets: np.ndarray, lengths: np.ndarray, window: int, stride: int):
        if window < 1 or stride < 1:
            raise ValueError(f"window ({window}) and stride ({stride}) must be >= 1")
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.window = int(window)
        self.stride = int(stride)
        counts = np.maximum(0, (self.lengths - window) // stride + 1)
        self.cum = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.cum[-1])

    def starts(self, i: np.ndarray | int) -> np.ndarray:
        """Absolute start rows of windows ``i`` (scalar or array)."""
        i = np.asarray(i, dtype=np.int64)
        if np.any((i < 0) | (i >= len(self))):
            raise IndexError(f"window index out of range 0..{len(self) - 1}")
        rec = np.searchsorted(self.cum, i, side="right") - 1
        return self.offsets[rec] + (i - self.cum[rec]) * self.stride

    def record_of(self, i: np.ndarray | int) -> np.ndarray:
        return np.searchsorted(self.cum, np.asarray(i, dtype=np.int64), side="right") - 1


def gather_windows(data: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """Slice ``window`` rows at each start from a (memory-mapped) array into one batch array."""
    idx = starts[:, None] + np.arange(window)[None, :]
    return np.asarray(data[idx])


def pad_batch(seqs: Sequence[np.ndarray | torch.Tensor], pad_value: float = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length sequences (time first) into a padded batch plus their lengths."""
    tensors = [torch.as_tensor(s) for s in seqs]
    lengths = torch.tensor([len(t) for t in tensors], dtype=torch.long)
    padded = torch.nn.utils.rnn.pad_sequence(tensors, batch_first=True, padding_value=pad_value)
    return padded, lengths
