"""DNA: test-split classification metrics, the model beside its baselines, strand handling chosen on val.

Metrics (binary: score of the positive class = meta's classes[1]; multi-class: one-vs-rest, macro):
``auroc``, ``auprc`` (average precision), ``accuracy`` and ``balanced_accuracy`` (macro recall; the
"macro accuracy" for multi-class). The model is scored twice on the same test records: forward
strand only (``*_fwd``) and averaged over both strands (``*_rcavg``: mean of the class probabilities
of each sequence and its reverse complement). Which one the headline ``test_*`` metrics are is a
property of the task: ``evaluate.rc_average`` true / false, or ``auto`` (the default): both strands
only if that scores a higher val AUROC. The choice, the val scores behind it and the training's
``rc_augment`` are reported under ``strand`` in the metrics file.

Baselines (``baselines``), fitted on train, hyperparameters chosen on val, scored on test: k-mer
logistic regression, position-aware logistic regression and gradient-boosted trees on one-hot bases
by position, and the majority class. Artifacts: ``roc.png`` (model both ways + every baseline) and
``roc.csv`` (fpr,tpr of the headline model curve, a DVC plot).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqpipe.domains.dna.datamodule import DnaCollate, reverse_complement_batch
from seqpipe.domains.dna.kmer import KmerLogisticRegression, kmer_features
from seqpipe.domains.dna.position import PositionalBoosting, PositionalLogisticRegression, onehot_positions
from seqpipe.domains.dna.source.rules import DnaRules
from seqpipe.domains.dna.source.validate import read_dna
from seqpipe.errors import SeqpipeError
from seqpipe.evaluation import Evaluation

# the `evaluate:` keys this domain reads (anything else in a config is an error)
# what evaluate writes under reports/<experiment>/ (".": the whole folder), for `seqpipe dvc-yaml`
DVC_REPORTS = {"outs": ["roc.png"], "plots": {"roc.csv": {"x": "fpr", "y": "tpr"}}}
SERVE = "seqpipe.domains.dna.serve:serve"  # the served MLflow model: a DataFrame of dna inputs (seqpipe.serving)
EVALUATE_KEYS = {
    "kmer_ks": "k-mer baseline: largest k values tried (k = 1..K)",
    "kmer_C": "k-mer baseline C grid",
    "kmer_canonical": "k-mer baseline: merge reverse complements (list of bools tried)",
    "rc_average": "headline metrics: true = both strands averaged, false = forward only, "
    "auto = the better on val AUROC",
    "batch_size": "evaluation batch size",
    "baselines": "which of kmer_lr, pos_lr, pos_gbt to fit (default all; majority always)",
    "pos_lr_C": "position-aware logistic regression (one-hot base by position): C grid, chosen on val",
    "gbt_depth": "gradient-boosted trees on one-hot positions: max_depth grid, chosen on val",
}


# -- metrics ----------------------------------------------------------------------------------
def classification_metrics(
    y: np.ndarray, probs: np.ndarray, prefix: str = "test_", suffix: str = ""
) -> dict[str, float]:
    """AUROC, AUPRC, accuracy and balanced accuracy for class-probability rows (binary or multi-class)."""
    from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score

    y = np.asarray(y)
    k = probs.shape[1]
    pred = probs.argmax(1)
    out = {"accuracy": float((pred == y).mean()), "balanced_accuracy": float(balanced_accuracy_score(y, pred))}
    present = np.unique(y)
    if len(present) < 2:
        out.update(auroc=float("nan"), auprc=float("nan"))
    elif k == 2:
        out["auroc"] = float(roc_auc_score(y, probs[:, 1]))
        out["auprc"] = float(average_precision_score(y, probs[:, 1]))
    else:
        onehot = np.eye(k)[y][:, present]
        p = probs[:, present]
        out["auroc"] = float(np.mean([roc_auc_score(onehot[:, j], p[:, j]) for j in range(len(present))]))
        out["auprc"] = float(np.mean([average_precision_score(onehot[:, j], p[:, j]) for j in range(len(present))]))
    return {f"{prefix}{name}{suffix}": v for name, v in out.items()}


def roc_points(y: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Binary: ROC of the positive class; multi-class: micro-averaged one-vs-rest ROC."""
    from sklearn.metrics import roc_curve

    if probs.shape[1] == 2:
        fpr, tpr, _ = roc_curve(y, probs[:, 1])
    else:
        fpr, tpr, _ = roc_curve(np.eye(probs.shape[1])[y].ravel(), probs.ravel())
    return fpr, tpr


# -- model scores -----------------------------------------------------------------------------
@torch.no_grad()
def predict_proba(
    model: torch.nn.Module, records: Sequence[np.ndarray], batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities of each record read forward and as its reverse complement: (fwd, rc), each (n, C)."""
    model.eval()
    device = next(model.parameters()).device
    collate = DnaCollate(0.0)
    fwd, rc = [], []
    for s in range(0, len(records), batch_size):
        batch = collate([(r, 0) for r in records[s : s + batch_size]])
        x, lengths = batch["inputs"].to(device), batch["lengths"]
        fwd.append(torch.softmax(model(x, lengths)[0].float(), -1).cpu())
        rc.append(torch.softmax(model(reverse_complement_batch(x, lengths), lengths)[0].float(), -1).cpu())
    return torch.cat(fwd).numpy(), torch.cat(rc).numpy()


# -- baselines --------------------------------------------------------------------------------
BASELINES = ("kmer_lr", "pos_lr", "pos_gbt")


def _select(
    candidates: list[dict[str, Any]], fit_one: Any, val_X: Any, y_val: np.ndarray
) -> tuple[Any, list[dict[str, Any]]]:
    """Fit every candidate on train; keep the best on val (AUROC, then accuracy). Test is never looked at.

    Returns ((key, model, params) of the winner, one grid row a candidate).
    """
    grid, best = [], None
    for params in candidates:
        m = fit_one(params)
        val = classification_metrics(y_val, m.predict_proba(X=val_X(params)), "val_")
        grid.append({**params, "val_auroc": val["val_auroc"], "val_accuracy": val["val_accuracy"]})
        key = (val["val_auroc"], val["val_accuracy"])
        if best is None or key > best[0]:
            best = (key, m, params)
    return best, grid


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


# -- evaluate ---------------------------------------------------------------------------------
def rc_average_mode(value: Any) -> str:
    """``evaluate.rc_average``: true (average both strands), false (forward only) or auto (pick on val)."""
    if value is True or value is False:
        return "both" if value else "forward"
    if value == "auto":
        return "auto"
    raise SeqpipeError(
        f"evaluate.rc_average must be true, false or auto, got {value!r}",
        where="evaluate.rc_average",
        fix="true: average each sequence with its reverse complement; false: forward strand only; "
        "auto: whichever scores the higher val AUROC",
    )


def evaluate(model: torch.nn.Module, dm: Any, cfg: dict[str, Any], base: dict[str, Any], out_dir: Path) -> Evaluation:
    ev = cfg.get("evaluate", {})
    mode = rc_average_mode(ev.get("rc_average", "auto"))
    bs = int(ev.get("batch_size", 256))
    vrec, vy, _ = dm.records("val")
    vf, vr = predict_proba(model, vrec, bs)
    val = {
        **classification_metrics(vy, vf, "val_", "_fwd"),
        **classification_metrics(vy, (vf + vr) / 2, "val_", "_rcavg"),
    }
    # auto: both strands only when that wins on val (a tie keeps the forward strand: strand-specific by default)
    rc_average = mode == "both" or (mode == "auto" and val["val_auroc_rcavg"] > val["val_auroc_fwd"])
    records, y, ids = dm.records("test")
    t0 = time.time()
    fwd, rc = predict_proba(model, records, bs)
    seconds = time.time() - t0
    avg = (fwd + rc) / 2
    headline = avg if rc_average else fwd
    metrics = classification_metrics(y, headline)
    metrics.update(classification_metrics(y, fwd, suffix="_fwd"))
    metrics.update(classification_metrics(y, avg, suffix="_rcavg"))
    metrics["test_rc_disagreement"] = float(np.abs(fwd - rc).sum(1).mean() / 2)  # mean total-variation distance
    metrics["test_sequences"] = float(len(y))
    metrics["predict_seconds"] = seconds
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fpr, tpr = roc_points(y, headline)
    with open(out_dir / "roc.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["fpr", "tpr"])
        w.writerows(zip(np.round(fpr, 6), np.round(tpr, 6), strict=False))
    curves = {f"{cfg['name']} (both strands)": roc_points(y, avg), f"{cfg['name']} (forward only)": roc_points(y, fwd)}
    if list(base.get("test_ids", [])) == [str(i) for i in ids]:
        for bname, probs in (base.get("test_probs") or {}).items():
            curves[f"baseline {bname}"] = roc_points(y, np.asarray(probs))
    png = out_dir / "roc.png"
    plot_roc(
        curves, png, title=f"{cfg['name']}: test ROC ({'binary' if headline.shape[1] == 2 else 'micro one-vs-rest'})"
    )
    strand = {
        "rc_augment": float(getattr(dm, "rc_augment", 0.0)),
        "rc_average": mode,
        "rc_average_used": rc_average,
        **{k: round(v, 6) for k, v in val.items()},
    }
    extra = {
        "rc_average": rc_average,
        "strand": strand,
        "classes": list(dm.classes),
        "baseline_choices": base.get("choices", {}),
    }
    return Evaluation(
        task=(
            f"DNA sequence classification, binary (AUROC of class {dm.classes[1]!r})"
            if len(dm.classes) == 2
            else f"DNA sequence classification, {len(dm.classes)} classes (one-vs-rest macro AUROC)"
        ),
        primary_metric="test_auroc",
        direction="higher",
        model=metrics,
        baselines=base["baselines"],
        extra=extra,
        artifacts=[png, out_dir / "roc.csv"],
    )


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str = "") -> None:
    from matplotlib.figure import Figure  # no pyplot: the user's backend and figures stay untouched
    from sklearn.metrics import auc

    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    for name, (fpr, tpr) in curves.items():
        ax.plot(fpr, tpr, label=f"{name}: AUC {auc(fpr, tpr):.3f}")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# -- predict ----------------------------------------------------------------------------------
def predict(model: torch.nn.Module, paths: list[str]) -> list[dict[str, Any]]:
    """Class probabilities for every record of FASTA / CSV / folder inputs.

    Averaged over both strands when the model was trained with reverse-complement augmentation (a
    strand-symmetric task), forward strand only when it was not (strand-specific: splice sites,
    promoters). Checkpoints from before ``rc_augment`` was recorded average both strands, as they did.
    """
    info = model.hparams.get("data_info") or {}
    classes = info.get("classes")
    if not classes:
        raise SeqpipeError("checkpoint holds no DNA class list", fix="use a checkpoint trained on a DNA datamodule")
    r = info.get("rules", {})
    rules = DnaRules(
        strict=r.get("strict", True),
        convert_u=r.get("convert_u", False),
        max_len=r.get("max_len"),
        min_len=r.get("min_len", 1),
    )
    results = []
    for p in paths:
        res = read_dna(p, rules, label_field=info.get("label_field", "label"), require_labels=False)
        fwd, rc = predict_proba(model, res.codes)
        both = float(info.get("rc_augment", 0.5)) > 0
        avg = (fwd + rc) / 2 if both else fwd
        for rid, label, probs, f in zip(res.ids, res.labels, avg, fwd, strict=False):
            out = {
                "file": str(p),
                "id": rid,
                "predicted": classes[int(probs.argmax())],
                "probabilities": {c: round(float(v), 6) for c, v in zip(classes, probs, strict=False)},
                "strands": "both" if both else "forward",
                "forward_only": classes[int(f.argmax())],
            }
            if label:
                out["label"] = label
            results.append(out)
    return results
