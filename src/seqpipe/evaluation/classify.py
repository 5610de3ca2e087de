"""Classification scores every classifying domain shares: model probabilities in batches, and the metrics.

One ``classification_metrics`` for all of them; what a domain reports is a parameter (``report``), so
each keeps its metric names, their order and their numbers:

    ("accuracy", "macro_f1", "recall")                  audio: predicted labels, per-class recall by name
    ("accuracy", "balanced_accuracy", "auroc", "auprc")  DNA: class probabilities; binary AUROC/AUPRC of
                                                         class 1, multi-class one-vs-rest macro over the
                                                         classes present
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

LABEL_METRICS = ("accuracy", "macro_f1", "recall")
RANKING_METRICS = ("accuracy", "balanced_accuracy", "auroc", "auprc")


def classification_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray | None = None,
    *,
    probs: np.ndarray | None = None,
    report: Sequence[str] = RANKING_METRICS,
    classes: Sequence[str] | None = None,
    prefix: str = "test_",
    suffix: str = "",
) -> dict[str, float]:
    """``{prefix}{metric}{suffix}`` for each metric of ``report``, in that order.

    ``y_pred`` (labels) or ``probs`` (rows of class probabilities; labels = argmax) is scored against
    ``y_true``. ``recall`` expands to ``recall_<class>`` over all ``classes`` (labels 0..len-1) and
    ``macro_f1`` averages over them too; ``auroc`` / ``auprc`` need ``probs`` and are NaN when
    ``y_true`` holds one class only.
    """
    y_true = np.asarray(y_true)
    pred = probs.argmax(1) if y_pred is None else y_pred
    labels = list(range(len(classes))) if classes is not None else None
    out: dict[str, float] = {}
    for name in report:
        if name == "accuracy":
            out["accuracy"] = float(np.mean(y_true == pred))
        elif name == "balanced_accuracy":
            from sklearn.metrics import balanced_accuracy_score

            out["balanced_accuracy"] = float(balanced_accuracy_score(y_true, pred))
        elif name == "macro_f1":
            from sklearn.metrics import f1_score

            out["macro_f1"] = float(f1_score(y_true, pred, labels=labels, average="macro", zero_division=0))
        elif name == "recall":
            from sklearn.metrics import recall_score

            recall = recall_score(y_true, pred, labels=labels, average=None, zero_division=0)
            out.update({f"recall_{c}": float(r) for c, r in zip(classes or [], recall, strict=False)})
        elif name in ("auroc", "auprc"):
            out[name] = _ranking_score(name, y_true, probs)
        else:
            raise ValueError(f"unknown classification metric {name!r}")
    return {f"{prefix}{name}{suffix}": v for name, v in out.items()}


def _ranking_score(name: str, y: np.ndarray, probs: np.ndarray) -> float:
    """AUROC or AUPRC: binary of class 1; multi-class the mean one-vs-rest score over the classes present."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    score = roc_auc_score if name == "auroc" else average_precision_score
    present = np.unique(y)
    if len(present) < 2:
        return float("nan")
    if probs.shape[1] == 2:
        return float(score(y, probs[:, 1]))
    onehot = np.eye(probs.shape[1])[y][:, present]
    p = probs[:, present]
    return float(np.mean([score(onehot[:, j], p[:, j]) for j in range(len(present))]))


View = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def predict_proba(
    model: torch.nn.Module,
    records: Sequence[Any],
    collate: Callable[[list[tuple[Any, int]]], dict[str, torch.Tensor]],
    batch_size: int,
    views: Sequence[View | None] = (None,),
) -> list[np.ndarray]:
    """Softmax class probabilities (N, C) of a classifier over ``records``, in batches made by ``collate``.

    One array a view: ``None`` is the input as collated, a view maps (inputs, lengths) to other inputs
    (e.g. the reverse complement); every view of a batch is scored before the next batch.
    """
    model.eval()
    device = next(model.parameters()).device
    out: list[list[np.ndarray]] = [[] for _ in views]
    for s in range(0, len(records), batch_size):
        batch = collate([(r, 0) for r in records[s : s + batch_size]])
        x, lengths = batch["inputs"].to(device), batch["lengths"]
        for rows, view in zip(out, views, strict=True):
            logits = model(x if view is None else view(x, lengths), lengths)[0]
            rows.append(torch.softmax(logits.float(), -1).cpu().numpy())
    classes = getattr(getattr(model, "spec", None), "num_classes", 0)
    return [np.concatenate(rows) if rows else np.zeros((0, classes)) for rows in out]
