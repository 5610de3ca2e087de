"""Text: bits per character on the whole test stream, model beside the strongest n-gram.

The model reads the test split as ``lanes`` contiguous lanes with its hidden state carried from
window to window, so every character is predicted with all of its lane's history, the way the
n-gram reads the stream. Both are scored on exactly the same characters (lane starts excluded).
The n-gram order is chosen on the validation split, then reported on test.

Beside both, the mixture a practitioner would ship: per character, P = w P_model + (1 - w) P_ngram,
the weight w chosen on the validation stream (the same lanes) and reported on test as the variant
``<experiment>+kn<order>`` (a row of its own in the summary table).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqpipe.baselines.ngram import KneserNeyLM
from seqpipe.evaluation import Evaluation
from seqpipe.progress import progress

log = logging.getLogger(__name__)

# the `evaluate:` keys this domain reads (anything else in a config is an error)
# what evaluate writes under reports/<experiment>/ (".": the whole folder), for `seqpipe dvc-yaml`
DVC_REPORTS = {"outs": ["."]}
EVALUATE_KEYS = {
    "ngram_max_order": "n-gram orders 1..N fitted; the best on val is reported",
    "lanes": "parallel streams when scoring the test split",
    "window": "characters a scoring window",
    "prompt": "prompt of the logged sample",
    "sample_length": "characters of the logged sample",
    "mixture": "also score the model + best n-gram mixture, its weight chosen on val (default true)",
}


def lane_layout(n: int, lanes: int) -> tuple[np.ndarray, int]:
    lanes = max(1, min(lanes, n // 2))
    lane_len = n // lanes
    return np.arange(lanes) * lane_len, lane_len


@torch.no_grad()
def stream_log2_probs(model: torch.nn.Module, tokens: np.ndarray, lanes: int = 32, window: int = 256) -> np.ndarray:
    """log2 P(x_t | lane history) for every token of each lane but its first: shape (lanes, lane_len-1)."""
    model.eval()
    device = next(model.parameters()).device
    starts, lane_len = lane_layout(len(tokens), lanes)
    grid = torch.from_numpy(np.stack([np.asarray(tokens[s : s + lane_len]) for s in starts]).astype(np.int64))
    out = np.empty((len(starts), lane_len - 1))
    state = None
    for s in progress(range(0, lane_len - 1, window), "scoring the test stream", unit="window"):
        e = min(lane_len - 1, s + window)
        x = grid[:, s:e].to(device)
        y = grid[:, s + 1 : e + 1].to(device)
        logits, state = model(x, state=state)
        logp = torch.log_softmax(logits.float(), -1).gather(-1, y.unsqueeze(-1)).squeeze(-1)
        out[:, s:e] = (logp / math.log(2)).cpu().numpy()
    return out


def scored_positions(n: int, lanes: int) -> np.ndarray:
    """Stream positions the lane evaluation predicts (every lane position but the lane's first)."""
    starts, lane_len = lane_layout(n, lanes)
    return (starts[:, None] + np.arange(1, lane_len)[None, :]).ravel()


def baselines(dm: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    """Fit KN n-grams on train, pick the order with the lowest val bpc, score it on test."""
    ev = cfg.get("evaluate", {})
    max_order = int(ev.get("ngram_max_order", 8))
    lanes = int(ev.get("lanes", 32))
    dm.prepare_data()
    dm.setup("test")
    vocab = dm.spec.vocab_size
    train, val, test = (np.asarray(dm.split_tokens(s)) for s in ("train", "val", "test"))
    lm = KneserNeyLM(max_order, vocab).fit(train)
    val_bpc = {o: lm.bits_per_token(val, o) for o in range(1, max_order + 1)}
    best = min(val_bpc, key=val_bpc.get)
    pos = scored_positions(len(test), lanes) - 1  # log2_probs index i scores token i+1
    scored = {}
    for o in sorted({2, 3, 5, best}):
        if o <= max_order:
            bpc = float(-lm.log2_probs(test, o)[pos].mean())
            scored[f"kn{o}"] = {"test_bpc": bpc, "test_perplexity": 2.0**bpc}
    return {
        "baselines": scored,
        "best_order_on_val": best,
        "val_bpc_by_order": {str(o): v for o, v in val_bpc.items()},
        "unigram_test_bpc": float(-lm.log2_probs(test, 1)[pos].mean()),
    }


def evaluate(model: torch.nn.Module, dm: Any, cfg: dict[str, Any], base: dict[str, Any], out_dir: Path) -> Evaluation:
    ev = cfg.get("evaluate", {})
    lanes = int(ev.get("lanes", 32))
    test = np.asarray(dm.split_tokens("test"))
    lp = stream_log2_probs(model, test, lanes=lanes, window=int(ev.get("window", 256)))
    bpc = float(-lp.mean())
    metrics = {"test_bpc": bpc, "test_perplexity": 2.0**bpc, "test_chars_scored": float(lp.size)}
    extra: dict[str, Any] = {}
    if ev.get("mixture", True):
        extra = mixture(model, dm, cfg, base, lp, lanes, int(ev.get("window", 256)))
    artifacts = []
    try:
        from seqpipe.generate import generate

        sample = generate(
            model,
            dm.vocab,
            prompt=ev.get("prompt", "romeo:\n"),
            length=int(ev.get("sample_length", 400)),
            temperature=0.8,
            seed=0,
            allow_unk=True,
        )
        path = out_dir / "sample.txt"
        path.write_text(sample)
        artifacts.append(path)
    except Exception as e:  # a sample is a nicety; never lose the metrics for it
        log.warning("sample generation skipped: %s", e)
    return Evaluation(
        task="next-character language modeling (bits per character, whole test stream)",
        primary_metric="test_bpc",
        direction="lower",
        model=metrics,
        baselines=base["baselines"],
        extra={
            "ngram_best_order_on_val": base["best_order_on_val"],
            "ngram_val_bpc_by_order": base["val_bpc_by_order"],
            **extra,
        },
        artifacts=artifacts,
    )


def mix_bits(model_lp: np.ndarray, ngram_lp: np.ndarray, w: float) -> float:
    """Bits per token of the per-token mixture w P_model + (1 - w) P_ngram (inputs: log2 probs)."""
    return float(-np.logaddexp2(np.log2(max(w, 1e-12)) + model_lp, np.log2(max(1 - w, 1e-12)) + ngram_lp).mean())


def mixture(
    model: torch.nn.Module,
    dm: Any,
    cfg: dict[str, Any],
    base: dict[str, Any],
    test_lp: np.ndarray,
    lanes: int,
    window: int,
) -> dict[str, Any]:
    """Choose the mixture weight on the val stream (grid 0..1 by 0.02), report it on the test stream."""
    order = int(base["best_order_on_val"])
    train, val, test = (np.asarray(dm.split_tokens(s)) for s in ("train", "val", "test"))
    lm = KneserNeyLM(order, dm.spec.vocab_size).fit(train)

    def ngram_at_lanes(tokens: np.ndarray) -> np.ndarray:
        return lm.log2_probs(tokens, order)[scored_positions(len(tokens), lanes) - 1]

    val_model = stream_log2_probs(model, val, lanes=lanes, window=window).ravel()
    val_ngram = ngram_at_lanes(val)
    grid = np.round(np.arange(0.0, 1.0001, 0.02), 2)
    val_bits = {float(w): mix_bits(val_model, val_ngram, float(w)) for w in grid}
    w = min(val_bits, key=val_bits.get)
    test_bits = mix_bits(test_lp.ravel(), ngram_at_lanes(test), w)
    name = f"{cfg['name']}+kn{order}"
    return {
        "variants": {name: {"test_bpc": test_bits, "mixture_weight_on_model": w}},
        "mixture_val_bpc_by_weight": {str(k): v for k, v in val_bits.items()},
    }
