"""Text: bits per character on the whole test stream, model beside the strongest n-gram.

The model reads the test split as ``lanes`` contiguous lanes with its hidden state carried from
window to window, so every character is predicted with all of its lane's history, the way the
n-gram reads the stream. Both are scored on exactly the same characters (lane starts excluded).
The n-gram order is chosen on the validation split, then reported on test.

Beside both, the mixture a practitioner would ship: per character, P = w P_model + (1 - w) P_ngram,
the weight w chosen on the validation stream (the same lanes) and reported on test as the variant
``<experiment>+kn<order>`` (a row of its own in the summary table).

Optional (``evaluate.dynamic``), reported apart, never as the headline: dynamic evaluation -- the
model takes an SGD step on each window once it is scored -- against the n-gram mixed with a cache
of the text read so far (seqpipe.domains.text.cache), both reading in the same order.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqpipe.domains.text.cache import cache_log2_probs
from seqpipe.domains.text.ngram import KneserNeyLM
from seqpipe.errors import SeqpipeError
from seqpipe.evaluation import Evaluation
from seqpipe.progress import progress

log = logging.getLogger(__name__)

# the `evaluate:` keys this domain reads (anything else in a config is an error)
# what evaluate writes under reports/<experiment>/ (".": the whole folder), for `seqpipe dvc-yaml`
DVC_REPORTS = {"outs": ["."]}
GENERATE = "seqpipe.domains.text.generate:generate_from_checkpoint"  # `seqpipe generate` on this domain's models
SERVE = "seqpipe.domains.text.serve:serve"  # the served MLflow model: a DataFrame of text inputs (seqpipe.serving)
EVALUATE_KEYS = {
    "ngram_max_order": "n-gram orders 1..N fitted; the best on val is reported",
    "lanes": "parallel streams when scoring the test split",
    "window": "characters a scoring window",
    "prompt": "prompt of the logged sample",
    "sample_length": "characters of the logged sample",
    "mixture": "also score the model + best n-gram mixture, its weight chosen on val (default true)",
    "dynamic": "also report dynamic evaluation -- the model adapting its weights on the test stream as it reads "
    "it, beside the n-gram with a cache of the read text -- apart from the static rows (default false)",
    "dynamic_window": "characters a lane reads between two adaptation steps in dynamic evaluation (default 16)",
    "dynamic_lrs": "SGD step sizes tried on val for dynamic evaluation; the best is reported on test",
}
DYNAMIC_LRS = (0.1, 0.3, 1.0, 3.0)
CACHE_WEIGHTS = tuple(float(w) for w in np.round(np.arange(0.0, 0.8001, 0.02), 2))
CACHE_ORDERS = (2, 3, 4, 5, 6, 8)


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
    if ev.get("mixture", True) or ev.get("dynamic", False):
        order = int(base["best_order_on_val"])
        lm = KneserNeyLM(order, dm.spec.vocab_size).fit(np.asarray(dm.split_tokens("train")))
        kn = {s: ngram_at_lanes(lm, order, np.asarray(dm.split_tokens(s)), lanes).ravel() for s in ("val", "test")}
        if ev.get("mixture", True):
            extra = mixture(model, dm, cfg, kn, order, lp, lanes, int(ev.get("window", 256)))
        if ev.get("dynamic", False):
            extra["dynamic_evaluation"] = dynamic(model, dm, cfg, kn, order, lanes)
    artifacts = []
    try:
        from seqpipe.domains.text.generate import generate

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
        tracked=tracked_numbers(extra),
    )


def tracked_numbers(extra: dict[str, Any]) -> dict[str, float]:
    """The mixture and dynamic-evaluation results as MLflow metric names (which may not contain '+')."""
    out = {}
    for row in extra.get("variants", {}).values():  # the model + n-gram mixture
        out["mixture_test_bpc"] = row["test_bpc"]
        out["mixture_weight_on_model"] = row["mixture_weight_on_model"]
    if dynamic := extra.get("dynamic_evaluation"):  # the adapting model and the cache n-gram
        out["dynamic_test_bpc"] = dynamic["model"]["test_bpc"]
        out["dynamic_ngram_test_bpc"] = dynamic["ngram"]["test_bpc"]
    return out


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
