"""DNA: test-split classification metrics, model beside a k-mer logistic regression, RC averaging on/off.

Metrics (binary: score of the positive class = meta's classes[1]; multi-class: one-vs-rest, macro):
``auroc``, ``auprc`` (average precision), ``accuracy`` and ``balanced_accuracy`` (macro recall; the
"macro accuracy" for multi-class). The model is scored twice on the same test records: forward
strand only (``*_fwd``) and averaged over both strands (``*_rcavg``: mean of the class probabilities
of each sequence and its reverse complement); ``evaluate.rc_average`` picks which one the headline
``test_*`` metrics are.

Baselines, fitted on train, chosen on val (AUROC), scored on test: k-mer frequencies (k = 1..K,
K <= 6, plain or reverse-complement-merged) + scikit-learn logistic regression, and the majority class.
Artifacts: ``roc.png`` (model both ways + k-mer baseline) and ``roc.csv`` (fpr,tpr of the headline
model curve, a DVC plot).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from seqpipe.baselines.kmer import KmerLogisticRegression, kmer_features
from seqpipe.data.dna import DnaCollate, reverse_complement_batch
from seqpipe.errors import SeqpipeError
from seqpipe.evaluation import Evaluation
from seqpipe.sources.dna import DnaRules, read_dna

# the `evaluate:` keys this domain reads (anything else in a config is an error)
# what evaluate writes under reports/<experiment>/ (".": the whole folder), for `seqpipe dvc-yaml`
DVC_REPORTS = {"outs": ["roc.png"], "plots": {"roc.csv": {"x": "fpr", "y": "tpr"}}}
EVALUATE_KEYS = {
    "kmer_ks": "k-mer baseline: largest k values tried (k = 1..K)",
    "kmer_C": "k-mer baseline C grid",
    "kmer_canonical": "k-mer baseline: merge reverse complements (list of bools tried)",
    "rc_average": "headline metrics average both strands",
    "batch_size": "evaluation batch size",
}



# -- metrics ----------------------------------------------------------------------------------
def classification_metrics(y: np.ndarray, probs: np.ndarray, prefix: str = "test_", suffix: str = "") -> dict[str, float]:
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
def predict_proba(model: torch.nn.Module, records: Sequence[np.ndarray], batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities of each record read forward and as its reverse complement: (fwd, rc), each (n, C)."""
    model.eval()
    device = next(model.parameters()).device
    collate = DnaCollate(0.0)
    fwd, rc = [], []
    for s in range(0, len(records), batch_size):
        batch = collate([(r, 0) for r in records[s:s + batch_size]])
        x, lengths = batch["inputs"].to(device), batch["lengths"]
        fwd.append(torch.softmax(model(x, lengths)[0].float(), -1).cpu())
        rc.append(torch.softmax(model(reverse_complement_batch(x, lengths), lengths)[0].float(), -1).cpu())
    return torch.cat(fwd).numpy(), torch.cat(rc).numpy()


# -- baselines --------------------------------------------------------------------------------
def baselines(dm: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    """k-mer LR: max_k, C and canonical chosen on val AUROC; scored on test. Plus the majority class."""
    ev = cfg.get("evaluate", {})
    ks = [int(k) for k in ev.get("kmer_ks", [3, 4, 5, 6])]
    cs = [float(c) for c in ev.get("kmer_C", [0.01, 0.1])]
    canon = [bool(c) for c in ev.get("kmer_canonical", [False, True])]
    if max(ks) > 6 or min(ks) < 1:
        raise SeqpipeError(f"kmer_ks must lie in 1..6, got {ks}", where="evaluate.kmer_ks")
    dm.prepare_data()
    dm.setup("test")
    data = {s: dm.records(s) for s in ("train", "val", "test")}
    t0 = time.time()
    feats = {(s, c): kmer_features(data[s][0], range(1, max(ks) + 1), c) for s in data for c in set(canon)}
    grid = []
    best = None
    for c in sorted(set(canon)):
        for k in sorted(ks):
            cols = _kmer_columns(k, c)
            for C in cs:
                m = KmerLogisticRegression(k, C, c, seed=int(cfg.get("seed", 0)))
                m.fit(None, data["train"][1], X=feats[("train", c)][:, :cols])
                val = classification_metrics(data["val"][1], m.predict_proba(X=feats[("val", c)][:, :cols]), "val_")
                grid.append({"max_k": k, "C": C, "canonical": c, "val_auroc": val["val_auroc"]})
                if best is None or val["val_auroc"] > best[0]:
                    best = (val["val_auroc"], m, cols, c)
    _, m, cols, c = best
    test_probs = m.predict_proba(X=feats[("test", c)][:, :cols])
    y_train, y_test = data["train"][1], data["test"][1]
    prior = np.bincount(y_train, minlength=test_probs.shape[1]) / len(y_train)
    return {
        "baselines": {
            "kmer_lr": classification_metrics(y_test, test_probs),
            "majority": classification_metrics(y_test, np.tile(prior, (len(y_test), 1))),
        },
        "kmer_lr_choice": {"max_k": m.max_k, "C": m.C, "canonical": m.canonical},
        "kmer_lr_grid": grid,
        "kmer_lr_seconds": round(time.time() - t0, 1),
        "kmer_lr_test_probs": np.round(test_probs, 6).tolist(),
        "test_ids": [str(i) for i in data["test"][2]],
    }


def _kmer_columns(k: int, canonical: bool) -> int:
    """Columns of k = 1..k in a kmer_features matrix built for k = 1..K (blocks are stacked by k)."""
    if not canonical:
        return sum(4**j for j in range(1, k + 1))
    from seqpipe.baselines.kmer import canonical_map

    return sum(len(np.unique(canonical_map(j))) for j in range(1, k + 1))


# -- evaluate ---------------------------------------------------------------------------------
def evaluate(model: torch.nn.Module, dm: Any, cfg: dict[str, Any], base: dict[str, Any], out_dir: Path) -> Evaluation:
    ev = cfg.get("evaluate", {})
    rc_average = bool(ev.get("rc_average", True))
    records, y, ids = dm.records("test")
    t0 = time.time()
    fwd, rc = predict_proba(model, records, int(ev.get("batch_size", 256)))
    seconds = time.time() - t0
    avg = (fwd + rc) / 2
    metrics = classification_metrics(y, avg if rc_average else fwd)
    metrics.update(classification_metrics(y, fwd, suffix="_fwd"))
    metrics.update(classification_metrics(y, avg, suffix="_rcavg"))
    metrics["test_rc_disagreement"] = float(np.abs(fwd - rc).sum(1).mean() / 2)  # mean total-variation distance
    metrics["test_sequences"] = float(len(y))
    metrics["predict_seconds"] = seconds
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    headline = avg if rc_average else fwd
    fpr, tpr = roc_points(y, headline)
    with open(out_dir / "roc.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["fpr", "tpr"])
        w.writerows(zip(np.round(fpr, 6), np.round(tpr, 6)))
    curves = {f"{cfg['name']} (both strands)": roc_points(y, avg), f"{cfg['name']} (forward only)": roc_points(y, fwd)}
    if base.get("kmer_lr_test_probs") and list(base.get("test_ids", [])) == [str(i) for i in ids]:
        curves["k-mer LR baseline"] = roc_points(y, np.asarray(base["kmer_lr_test_probs"]))
    png = out_dir / "roc.png"
    plot_roc(curves, png, title=f"{cfg['name']}: test ROC ({'binary' if headline.shape[1] == 2 else 'micro one-vs-rest'})")
    extra = {"rc_average": rc_average, "classes": list(dm.classes), "kmer_lr_choice": base.get("kmer_lr_choice")}
    return Evaluation(
        task=(f"DNA sequence classification, binary (AUROC of class {dm.classes[1]!r})" if len(dm.classes) == 2 else
              f"DNA sequence classification, {len(dm.classes)} classes (one-vs-rest macro AUROC)"),
        primary_metric="test_auroc",
        direction="higher",
        model=metrics,
        baselines=base["baselines"],
        extra=extra,
        artifacts=[png, out_dir / "roc.csv"],
    )


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import auc

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, (fpr, tpr) in curves.items():
        ax.plot(fpr, tpr, label=f"{name}: AUC {auc(fpr, tpr):.3f}")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# -- predict ----------------------------------------------------------------------------------
def predict(model: torch.nn.Module, paths: list[str]) -> list[dict[str, Any]]:
    """Class probabilities (averaged over both strands) for every record of FASTA / CSV / folder inputs."""
    info = model.hparams.get("data_info") or {}
    classes = info.get("classes")
    if not classes:
        raise SeqpipeError("checkpoint holds no DNA class list", fix="use a checkpoint trained on a DNA datamodule")
    r = info.get("rules", {})
    rules = DnaRules(strict=r.get("strict", True), convert_u=r.get("convert_u", False), max_len=r.get("max_len"),
                     min_len=r.get("min_len", 1))
    results = []
    for p in paths:
        res = read_dna(p, rules, label_field=info.get("label_field", "label"), require_labels=False)
        fwd, rc = predict_proba(model, res.codes)
        avg = (fwd + rc) / 2
        for rid, label, probs, f in zip(res.ids, res.labels, avg, fwd):
            out = {"file": str(p), "id": rid, "predicted": classes[int(probs.argmax())],
                   "probabilities": {c: round(float(v), 6) for c, v in zip(classes, probs)},
                   "forward_only": classes[int(f.argmax())]}
            if label:
                out["label"] = label
            results.append(out)
    return results
