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

from seqpipe.domains.dna.baselines import BASELINES, baselines, classification_metrics  # noqa: F401 -- the task's API
from seqpipe.domains.dna.datamodule import DnaCollate, reverse_complement_batch
from seqpipe.domains.dna.source.rules import DnaRules
from seqpipe.domains.dna.source.validate import read_dna
from seqpipe.errors import SeqpipeError
from seqpipe.evaluation import Evaluation, classify
from seqpipe.evaluation.margin import best_baseline, statistic_margin

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
def roc_points(y: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Binary: ROC of the positive class; multi-class: micro-averaged one-vs-rest ROC."""
    from sklearn.metrics import roc_curve

    if probs.shape[1] == 2:
        fpr, tpr, _ = roc_curve(y, probs[:, 1])
    else:
        fpr, tpr, _ = roc_curve(np.eye(probs.shape[1])[y].ravel(), probs.ravel())
    return fpr, tpr


# -- model scores -----------------------------------------------------------------------------
def predict_proba(
    model: torch.nn.Module, records: Sequence[np.ndarray], batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities of each record read forward and as its reverse complement: (fwd, rc), each (n, C)."""
    fwd, rc = classify.predict_proba(
        model, records, DnaCollate(0.0), batch_size, views=(None, reverse_complement_batch)
    )
    return fwd, rc


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
        margin=sequence_margin(dm, cfg, base, y, [str(i) for i in ids], headline),
    )


def sequence_margin(
    dm: Any, cfg: dict[str, Any], base: dict[str, Any], y: np.ndarray, ids: list[str], probs: np.ndarray
) -> dict:
    """AUROC of model - best baseline, sequences resampled and both AUROCs recomputed (resamples holding one
    class only are left out). The baseline's probabilities are the baselines file's (rounded to 6 decimals)."""
    vs = best_baseline(base["baselines"], "test_auroc", "higher")
    if list(base.get("test_ids", [])) != ids or (vs != "majority" and vs not in (base.get("test_probs") or {})):
        base = baselines(dm, cfg)  # an older baselines file: refit
    bp = np.asarray(base["test_probs"][vs]) if vs != "majority" else np.full_like(probs, 1.0 / probs.shape[1])

    def auroc(p: np.ndarray, idx: np.ndarray) -> float:
        return classify.classification_metrics(y[idx], probs=p[idx], report=("auroc",))["test_auroc"]

    def auroc_margin(idx: np.ndarray) -> float:
        return auroc(probs, idx) - auroc(bp, idx)

    return statistic_margin(auroc_margin, len(y), vs, unit="test sequence (AUROC recomputed on each resample)")


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
