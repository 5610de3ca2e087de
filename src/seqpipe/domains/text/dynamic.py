"""Dynamic evaluation: the model adapting its weights on the stream as it reads it, beside the n-gram
adapting the same way -- mixed with a cache of the text read so far (seqpipe.domains.text.cache).

Reported apart from the static rows, never as the headline: adapting on the test text is a different
comparison.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch

from seqpipe.domains.text.cache import cache_log2_probs
from seqpipe.domains.text.lanes import lane_layout, lane_windows, scored_grid, target_log2_probs
from seqpipe.domains.text.mixture import mix_bits
from seqpipe.errors import SeqpipeError

DYNAMIC_LRS = (0.1, 0.3, 1.0, 3.0)
CACHE_WEIGHTS = tuple(float(w) for w in np.round(np.arange(0.0, 0.8001, 0.02), 2))
CACHE_ORDERS = (2, 3, 4, 5, 6, 8)


def dynamic_log2_probs(
    model: torch.nn.Module, tokens: np.ndarray, lanes: int, window: int, lr: float, clip: float = 1.0
) -> np.ndarray:
    """Dynamic evaluation (Krause et al. 2018, SGD form): score a window, then one SGD step on it.

    Like ``stream_log2_probs`` (same lanes, same scored characters), but after each window of all
    lanes is scored the weights take one clipped SGD step of size ``lr`` on that window's loss, so
    every character is predicted before the model has trained on it. Works on a copy: ``model`` is
    left as it was. ``lr=0`` gives the static scores."""
    from seqpipe.models.core import detach_state
    from seqpipe.models.ngram_embedding import HashedNgrams

    model = copy.deepcopy(model)
    for m in model.modules():  # adapt without dropout; train mode only because cuDNN's RNN backward needs it
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
        elif isinstance(m, (torch.nn.RNNBase, HashedNgrams)):  # the n-gram rows' dropout too (random, and worse)
            m.dropout = 0.0
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    out, state = scored_grid(tokens, lanes), None
    for cols, x, y in lane_windows(tokens, lanes, window, params[0].device, "dynamic evaluation"):
        with torch.enable_grad():
            logits, state = model(x, state=state)
            log2p = target_log2_probs(logits, y)
            out[:, cols] = log2p.detach().cpu().numpy()
            if lr > 0:
                grads = torch.autograd.grad(-log2p.mean() * math.log(2), params)  # the mean loss in nats
                norm = torch.sqrt(sum((g.float() ** 2).sum() for g in grads))
                with torch.no_grad():
                    torch._foreach_add_(params, grads, alpha=-lr * min(1.0, clip / (float(norm) + 1e-6)))
        state = detach_state(state)
    return out


def dynamic(
    model: torch.nn.Module, dm: Any, cfg: dict[str, Any], kn: dict[str, np.ndarray], order: int, lanes: int
) -> dict[str, Any]:
    """Dynamic evaluation of the model beside the n-gram with the matching adaptation, a cache.

    Both read the test stream in the same order (lanes, ``dynamic_window`` characters at a time) and
    learn only from what they have already scored: the model takes an SGD step after each window,
    the cache n-gram counts every character once it is read. Their settings -- the model's step
    size, the cache's order and weight -- are chosen on the val stream, read the same way. Reported
    apart from the static rows: adapting on the test text is a different comparison."""
    ev = cfg.get("evaluate", {})
    window = int(ev.get("dynamic_window", 16))
    lrs = [float(x) for x in ev.get("dynamic_lrs", DYNAMIC_LRS)]
    if window < 1 or not lrs or min(lrs) <= 0:
        raise SeqpipeError(
            f"dynamic evaluation needs dynamic_window >= 1 and positive dynamic_lrs, got {window} and {lrs}",
            where="evaluate.dynamic_window / evaluate.dynamic_lrs",
            fix="e.g. dynamic_window: 16, dynamic_lrs: [0.1, 0.3, 1.0]",
        )
    val, test = (np.asarray(dm.split_tokens(s)) for s in ("val", "test"))
    val_by_lr = {lr: float(-dynamic_log2_probs(model, val, lanes, window, lr).mean()) for lr in lrs}
    lr = min(val_by_lr, key=val_by_lr.get)
    model_bits = float(-dynamic_log2_probs(model, test, lanes, window, lr).mean())

    def cache(tokens: np.ndarray, cache_order: int) -> np.ndarray:
        starts, lane_len = lane_layout(len(tokens), lanes)
        return cache_log2_probs(tokens, len(starts), lane_len, starts, window, cache_order, dm.spec.vocab_size).ravel()

    val_by_setting: dict[tuple[int, float], float] = {}
    for k in CACHE_ORDERS:
        cached = cache(val, k)
        for w in CACHE_WEIGHTS:  # mix_bits weighs its first argument: here the cache
            val_by_setting[(k, w)] = mix_bits(cached, kn["val"], w)
    k, w = min(val_by_setting, key=val_by_setting.get)
    return {
        "note": "weights or counts adapted on the test stream as it is read: not comparable with the static rows",
        "window": window,
        "model": {
            "name": cfg["name"],
            "test_bpc": model_bits,
            "lr": lr,
            "val_bpc_by_lr": {str(x): v for x, v in val_by_lr.items()},
        },
        "ngram": {
            "name": f"kn{order}+cache",
            "test_bpc": mix_bits(cache(test, k), kn["test"], w),
            "cache_order": k,
            "cache_weight": w,
            "val_bpc": val_by_setting[(k, w)],
        },
    }
