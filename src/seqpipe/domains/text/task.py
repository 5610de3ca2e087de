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

Modules: ``lanes`` (scoring a model on the stream), ``mixture`` (model + n-gram), ``dynamic`` (dynamic
evaluation beside the cache n-gram); this one holds the baselines and the evaluation that runs them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqpipe.domains.text.dynamic import dynamic
from seqpipe.domains.text.lanes import scored_positions, stream_log2_probs
from seqpipe.domains.text.mixture import mixture, ngram_at_lanes
from seqpipe.domains.text.ngram import KneserNeyLM
from seqpipe.evaluation import Evaluation
from seqpipe.evaluation.margin import best_baseline, unit_margin

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
    lm = None
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
        margin=stream_margin(dm, base, lp, lm, lanes, int(ev.get("window", 256))),
    )


def stream_margin(
    dm: Any, base: dict[str, Any], lp: np.ndarray, lm: KneserNeyLM | None, lanes: int, window: int
) -> dict[str, Any]:
    """Bits per character of model - best n-gram, the scored characters resampled in moving blocks of
    4 scoring windows (the loss of neighbouring characters is correlated: they share context)."""
    vs = best_baseline(base["baselines"], "test_bpc", "lower")
    order = int(vs.removeprefix("kn"))
    train = np.asarray(dm.split_tokens("train"))
    if lm is None or lm.max_order < order:
        lm = KneserNeyLM(order, dm.spec.vocab_size).fit(train)
    kn = ngram_at_lanes(lm, order, np.asarray(dm.split_tokens("test")), lanes).ravel()
    return unit_margin(
        -lp.ravel(),
        -kn,
        vs,
        unit="test character (bits), in stream order",
        block=4 * window,
        note=f"moving blocks of {4 * window} characters",
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
