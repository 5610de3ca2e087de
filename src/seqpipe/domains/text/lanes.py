"""Scoring a language model on a whole token stream read as contiguous lanes, hidden state carried.

The stream is cut into ``lanes`` contiguous lanes read side by side, ``window`` tokens at a time, so
every token is predicted with all of its lane's history (the way an n-gram reads the stream); the
first token of each lane is never scored. The mixture and dynamic evaluation read the same lanes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch

from seqpipe.progress import progress


def lane_layout(n: int, lanes: int) -> tuple[np.ndarray, int]:
    lanes = max(1, min(lanes, n // 2))
    lane_len = n // lanes
    return np.arange(lanes) * lane_len, lane_len


def lane_windows(
    tokens: np.ndarray, lanes: int, window: int, device: torch.device, what: str
) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor]]:
    """The stream cut into contiguous lanes (``lane_layout``), read ``window`` characters at a time:
    (columns of the scored-characters grid, inputs (lanes, w), next-character targets (lanes, w))."""
    starts, lane_len = lane_layout(len(tokens), lanes)
    grid = torch.from_numpy(np.stack([np.asarray(tokens[s : s + lane_len]) for s in starts]).astype(np.int64))
    for s in progress(range(0, lane_len - 1, window), what, unit="window"):
        e = min(lane_len - 1, s + window)
        yield slice(s, e), grid[:, s:e].to(device), grid[:, s + 1 : e + 1].to(device)


def scored_grid(tokens: np.ndarray, lanes: int) -> np.ndarray:
    """An empty (lanes, lane_len - 1) array: one cell a scored character."""
    starts, lane_len = lane_layout(len(tokens), lanes)
    return np.empty((len(starts), lane_len - 1))


def target_log2_probs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.float(), -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1) / math.log(2)


@torch.no_grad()
def stream_log2_probs(model: torch.nn.Module, tokens: np.ndarray, lanes: int = 32, window: int = 256) -> np.ndarray:
    """log2 P(x_t | lane history) for every token of each lane but its first: shape (lanes, lane_len-1)."""
    model.eval()
    out, state = scored_grid(tokens, lanes), None
    for cols, x, y in lane_windows(tokens, lanes, window, next(model.parameters()).device, "scoring the test stream"):
        logits, state = model(x, state=state)
        out[:, cols] = target_log2_probs(logits, y).cpu().numpy()
    return out


def scored_positions(n: int, lanes: int) -> np.ndarray:
    """Stream positions the lane evaluation predicts (every lane position but the lane's first)."""
    starts, lane_len = lane_layout(n, lanes)
    return (starts[:, None] + np.arange(1, lane_len)[None, :]).ravel()
