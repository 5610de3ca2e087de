"""The ecg_beats task: what seqpipe's stages ask of the domain (``baselines``, ``evaluate``, ``predict``).

- ``seqpipe baselines`` calls ``baselines(dm, cfg)``: fitted on train, chosen on val, scored on test;
  the result is written to reports/baselines/ecg_beats.json and read back by ``evaluate``.
- ``seqpipe evaluate`` calls ``evaluate(model, dm, cfg, baselines, out_dir)`` and writes the returned
  ``Evaluation`` to metrics/<experiment>.json and the MLflow run.
- ``seqpipe predict --ckpt models/<experiment>/best.ckpt beats.npz`` calls ``predict(model, paths)``.
``EVALUATE_KEYS`` lists the ``evaluate:`` config keys (an unknown key is an error naming the closest).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecg_beats.baselines import NearestCentroid, SoftmaxRegression, beat_features, class_metrics
from ecg_beats.datamodule import collate_beats
from ecg_beats.prepare import read_beats
from seqpipe.errors import SeqpipeError
from seqpipe.evaluation import Evaluation

EVALUATE_KEYS = {
    "batch_size": "evaluation batch size",
    "l2": "softmax-regression baseline: L2 penalties tried (the best on val balanced accuracy is scored)",
}


def baselines(dm: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    """``majority`` (the train prior), ``centroid`` (nearest class mean of beat features) and ``softmax``
    (softmax regression on the same features, its L2 penalty chosen on val). Test is never looked at
    before the choice."""
    grid = [float(v) for v in (cfg.get("evaluate") or {}).get("l2", [0.001, 0.01, 0.1])]
    dm.prepare_data()
    dm.setup("test")
    k = len(dm.classes)
    (xtr, ytr), (xva, yva), (xte, yte) = (dm.records(s) for s in ("train", "val", "test"))
    ftr, fva, fte = beat_features(xtr), beat_features(xva), beat_features(xte)
    prior = np.bincount(ytr, minlength=k) / len(ytr)
    out: dict[str, Any] = {"baselines": {"majority": class_metrics(yte, np.tile(prior, (len(yte), 1)))}}
    out["baselines"]["centroid"] = class_metrics(yte, NearestCentroid().fit(ftr, ytr, k).predict_proba(fte))
    tried = {l2: SoftmaxRegression(l2).fit(ftr, ytr, k) for l2 in grid}
    val = {l2: class_metrics(yva, m.predict_proba(fva), "val_")["val_balanced_accuracy"] for l2, m in tried.items()}
    best = max(grid, key=lambda l2: (val[l2], -l2))  # ties: the stronger penalty
    out["baselines"]["softmax"] = class_metrics(yte, tried[best].predict_proba(fte))
    out["choices"] = {"softmax": {"l2": best, "val_balanced_accuracy": val[best]}}
    return out


@torch.no_grad()
def predict_proba(model: torch.nn.Module, beats: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(n, classes) probabilities of standardized beats (n, samples)."""
    model.eval()
    device = next(model.parameters()).device
    probs = []
    for s in range(0, len(beats), batch_size):
        batch = collate_beats([(b, 0) for b in beats[s : s + batch_size]])
        probs.append(torch.softmax(model(batch["inputs"].to(device))[0].float(), -1).cpu())
    return torch.cat(probs).numpy().astype(np.float64)


def evaluate(model: torch.nn.Module, dm: Any, cfg: dict[str, Any], base: dict[str, Any], out_dir: Path) -> Evaluation:
    """The model's test metrics beside the baselines'; a confusion matrix in ``out_dir``."""
    beats, y = dm.records("test")
    probs = predict_proba(model, beats, int((cfg.get("evaluate") or {}).get("batch_size", 256)))
    metrics = class_metrics(y, probs)
    metrics["test_loss"] = float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean())
    metrics["test_beats"] = float(len(y))
    classes = dm.classes
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(confusion, (y, probs.argmax(1)), 1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "confusion.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["true \\ predicted", *classes])
        w.writerows([c, *row] for c, row in zip(classes, confusion.tolist(), strict=True))
    return Evaluation(
        task=f"heartbeat classification, {len(classes)} classes (balanced accuracy: chance is 1/{len(classes)})",
        primary_metric="test_balanced_accuracy",
        direction="higher",
        model=metrics,
        baselines=base["baselines"],
        extra={"classes": classes, "confusion": confusion.tolist(), "baseline_choices": base.get("choices", {})},
        artifacts=[out_dir / "confusion.csv"],
    )


def predict(model: torch.nn.Module, paths: list[str]) -> list[dict[str, Any]]:
    """Class probabilities of every beat in each ``beats.npz``, scaled as the model's training data was."""
    info = model.hparams.get("data_info") or {}
    if "classes" not in info:
        raise SeqpipeError("checkpoint holds no class list", fix="use a checkpoint trained on ecg_beats data")
    classes = info["classes"]
    results = []
    for p in paths:
        signal, labels = read_beats(p)
        if signal.shape[1] != info["beat_length"]:
            raise SeqpipeError(f"beats of {signal.shape[1]} samples, the model read {info['beat_length']}", where=p)
        probs = predict_proba(model, ((signal - info["mean"]) / info["std"]).astype(np.float32))
        for i, (row, label) in enumerate(zip(probs, labels, strict=True)):
            results.append(
                {
                    "file": str(p),
                    "beat": i,
                    "predicted": classes[int(row.argmax())],
                    "probabilities": {c: round(float(v), 6) for c, v in zip(classes, row, strict=True)},
                    "label": str(label),
                }
            )
    return results
