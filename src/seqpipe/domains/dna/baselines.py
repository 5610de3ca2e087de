"""DNA baselines, fitted on train with their hyperparameters chosen on val, scored on test (see ``baselines``)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from seqpipe.domains.dna.kmer import KmerLogisticRegression, kmer_features
from seqpipe.domains.dna.position import PositionalBoosting, PositionalLogisticRegression, onehot_positions
from seqpipe.errors import SeqpipeError
from seqpipe.evaluation import classify
from seqpipe.evaluation.select import pick_on_val


def classification_metrics(
    y: np.ndarray, probs: np.ndarray, prefix: str = "test_", suffix: str = ""
) -> dict[str, float]:
    """AUROC, AUPRC, accuracy and balanced accuracy for class-probability rows (binary or multi-class)."""
    return classify.classification_metrics(
        y, probs=probs, report=("accuracy", "balanced_accuracy", "auroc", "auprc"), prefix=prefix, suffix=suffix
    )


BASELINES = ("kmer_lr", "pos_lr", "pos_gbt")


def _select(
    candidates: list[dict[str, Any]], fit_one: Any, val_X: Any, y_val: np.ndarray
) -> tuple[Any, list[dict[str, Any]]]:
    """Fit every candidate on train; keep the best on val (AUROC, then accuracy). Test is never looked at.

    Returns ((key, model, params) of the winner, one grid row a candidate).
    """
    best = pick_on_val(
        candidates,
        fit_one,
        lambda params, m: classification_metrics(y_val, m.predict_proba(X=val_X(params)), "val_"),
        key=lambda val: (val["val_auroc"], val["val_accuracy"]),
    )
    grid = [{**p, "val_auroc": v["val_auroc"], "val_accuracy": v["val_accuracy"]} for p, v in best.scores]
    return ((best.score["val_auroc"], best.score["val_accuracy"]), best.model, best.params), grid


def baselines(dm: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    """Fitted on train, hyperparameters chosen on val (AUROC, ties by accuracy), scored on test:

    - ``kmer_lr``: k-mer frequencies (k = 1..K, K <= 6, plain or reverse-complement merged) + logistic
      regression; K, C and canonical chosen on val (strand-free: sees motifs anywhere, not positions).
    - ``pos_lr``: one-hot base by position + logistic regression, C chosen on val (a discriminative PWM).
    - ``pos_gbt``: gradient-boosted trees on the same one-hot positions, depth chosen on val.
    - ``majority``: the train class prior.
    ``evaluate.baselines`` lists which of the first three run (default all).
    """
    ev = cfg.get("evaluate", {})
    which = list(ev.get("baselines", BASELINES))
    unknown = sorted(set(which) - set(BASELINES))
    if unknown:
        raise SeqpipeError(
            f"unknown DNA baseline(s) {unknown}", where="evaluate.baselines", fix=f"use any of {list(BASELINES)}"
        )
    ks = [int(k) for k in ev.get("kmer_ks", [3, 4, 5, 6])]
    cs = [float(c) for c in ev.get("kmer_C", [0.01, 0.1])]
    canon = [bool(c) for c in ev.get("kmer_canonical", [False, True])]
    pos_cs = [float(c) for c in ev.get("pos_lr_C", [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0])]
    depths = [None if d is None else int(d) for d in ev.get("gbt_depth", [2, 4, 6])]
    if max(ks) > 6 or min(ks) < 1:
        raise SeqpipeError(f"kmer_ks must lie in 1..6, got {ks}", where="evaluate.kmer_ks")
    seed = int(cfg.get("seed", 0))
    dm.prepare_data()
    dm.setup("test")
    data = {s: dm.records(s) for s in ("train", "val", "test")}
    y_train, y_val, y_test = data["train"][1], data["val"][1], data["test"][1]
    out: dict[str, Any] = {"baselines": {}, "choices": {}, "grids": {}, "fit_seconds": {}, "test_probs": {}}

    def record(name: str, best: Any, grid: list[dict[str, Any]], X_test: np.ndarray, t0: float) -> None:
        _, m, params = best
        probs = m.predict_proba(X=X_test)
        out["baselines"][name] = classification_metrics(y_test, probs)
        out["choices"][name], out["grids"][name] = params, grid
        out["fit_seconds"][name] = round(time.time() - t0, 1)
        out["test_probs"][name] = np.round(probs, 6).tolist()

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # one thread like the training stages: deterministic, kind to shared cores
        if "kmer_lr" in which:
            t0 = time.time()
            feats = {(s, c): kmer_features(data[s][0], range(1, max(ks) + 1), c) for s in data for c in set(canon)}

            def kmer_X(split: str, p: dict[str, Any]) -> np.ndarray:
                return feats[(split, p["canonical"])][:, : _kmer_columns(p["max_k"], p["canonical"])]

            cand = [{"max_k": k, "C": C, "canonical": c} for c in sorted(set(canon)) for k in sorted(ks) for C in cs]
            best, grid = _select(
                cand,
                lambda p: KmerLogisticRegression(p["max_k"], p["C"], p["canonical"], seed=seed).fit(
                    None, y_train, X=kmer_X("train", p)
                ),
                lambda p: kmer_X("val", p),
                y_val,
            )
            record("kmer_lr", best, grid, kmer_X("test", best[2]), t0)
        length = int(max(len(r) for r in data["train"][0]))
        X = {s: onehot_positions(data[s][0], length) for s in data}
        if "pos_lr" in which:
            t0 = time.time()
            best, grid = _select(
                [{"C": C} for C in pos_cs],
                lambda p: PositionalLogisticRegression(p["C"], length, seed=seed).fit(None, y_train, X=X["train"]),
                lambda p: X["val"],
                y_val,
            )
            record("pos_lr", best, grid, X["test"], t0)
        if "pos_gbt" in which:
            t0 = time.time()
            best, grid = _select(
                [{"max_depth": d} for d in depths],
                lambda p: PositionalBoosting(p["max_depth"], length, seed=seed).fit(None, y_train, X=X["train"]),
                lambda p: X["val"],
                y_val,
            )
            record("pos_gbt", best, grid, X["test"], t0)
    prior = np.bincount(y_train, minlength=len(dm.classes)) / len(y_train)
    out["baselines"]["majority"] = classification_metrics(y_test, np.tile(prior, (len(y_test), 1)))
    out["test_ids"] = [str(i) for i in data["test"][2]]
    return out


def _kmer_columns(k: int, canonical: bool) -> int:
    """Columns of k = 1..k in a kmer_features matrix built for k = 1..K (blocks are stacked by k)."""
    if not canonical:
        return sum(4**j for j in range(1, k + 1))
    from seqpipe.domains.dna.kmer import canonical_map

    return sum(len(np.unique(canonical_map(j))) for j in range(1, k + 1))
