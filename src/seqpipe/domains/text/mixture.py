"""The model mixed with the n-gram per token, P = w P_model + (1 - w) P_ngram, the weight chosen on val.

What a practitioner would ship beside the model: reported on test as the variant ``<experiment>+kn<order>``.
Both are read on exactly the characters the lane evaluation scores (seqpipe.domains.text.lanes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from seqpipe.domains.text.lanes import lane_layout, scored_positions, stream_log2_probs
from seqpipe.domains.text.ngram import KneserNeyLM


def mix_bits(model_lp: np.ndarray, ngram_lp: np.ndarray, w: float) -> float:
    """Bits per token of the per-token mixture w P_model + (1 - w) P_ngram (inputs: log2 probs)."""
    return float(-np.logaddexp2(np.log2(max(w, 1e-12)) + model_lp, np.log2(max(1 - w, 1e-12)) + ngram_lp).mean())


def ngram_at_lanes(lm: KneserNeyLM, order: int, tokens: np.ndarray, lanes: int) -> np.ndarray:
    """The n-gram's log2 probs of the characters the lane evaluation scores, shape (lanes, lane_len - 1)."""
    starts, lane_len = lane_layout(len(tokens), lanes)
    return lm.log2_probs(tokens, order)[scored_positions(len(tokens), lanes) - 1].reshape(len(starts), lane_len - 1)


def mixture(
    model: torch.nn.Module,
    dm: Any,
    cfg: dict[str, Any],
    kn: dict[str, np.ndarray],
    order: int,
    test_lp: np.ndarray,
    lanes: int,
    window: int,
) -> dict[str, Any]:
    """Choose the mixture weight on the val stream (grid 0..1 by 0.02), report it on the test stream.
    ``kn``: the n-gram's log2 probs of the characters the lane evaluation scores, per split (ngram_at_lanes)."""
    val = np.asarray(dm.split_tokens("val"))
    val_model = stream_log2_probs(model, val, lanes=lanes, window=window).ravel()
    grid = np.round(np.arange(0.0, 1.0001, 0.02), 2)
    val_bits = {float(w): mix_bits(val_model, kn["val"], float(w)) for w in grid}
    w = min(val_bits, key=val_bits.get)
    test_bits = mix_bits(test_lp.ravel(), kn["test"], w)
    name = f"{cfg['name']}+kn{order}"
    return {
        "variants": {name: {"test_bpc": test_bits, "mixture_weight_on_model": w}},
        "mixture_val_bpc_by_weight": {str(k): v for k, v in val_bits.items()},
    }
