"""Audio: clip classification on the test split (unseen speakers) beside two baselines.

Model metrics: accuracy, macro-F1, per-class recall and the confusion matrix, written as a PNG (an
MLflow artifact) and as reports/<experiment>/predictions.csv (actual,predicted a clip: DVC's
confusion plot). Baselines, fitted on train, chosen on val, scored on the same test clips:
the majority class, and logistic regression on the time-averaged normalized log-mel (one vector
a clip) -- and on its mean and standard deviation over time, a stronger non-recurrent model.

Channel-shifted test: the same test clips through a fixed, seeded "real channel" (reverb, coloured
noise at 5-15 dB SNR, telephone band, mu-law 8-bit; data/channel.py), featurized at preprocess.
Model and every baseline report ``test_channel_accuracy`` and ``test_channel_macro_f1`` on it. Baselines
are fitted on the same training records as the model (clean clips plus any augmented copies).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqpipe.domains.audio.datamodule import collate_clips
from seqpipe.domains.audio.features import FeatureConfig, clip_features
from seqpipe.errors import SeqpipeError
from seqpipe.evaluation import Evaluation, classify
from seqpipe.evaluation.margin import best_baseline, unit_margin
from seqpipe.evaluation.select import pick_on_val

# the `evaluate:` keys this domain reads (anything else in a config is an error)
# what evaluate writes under reports/<experiment>/ (".": the whole folder), for `seqpipe dvc-yaml`
DVC_REPORTS = {
    "outs": ["confusion.png", "confusion.json"],
    "plots": {"predictions.csv": {"template": "confusion", "x": "predicted", "y": "actual"}},
}
SERVE = "seqpipe.domains.audio.serve:serve"  # the served MLflow model: a DataFrame of audio inputs (seqpipe.serving)
EVALUATE_KEYS = {
    "logreg_C": "C grid of the mean+std log-mel logistic regression (chosen on val)",
}


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict[str, float]:
    """accuracy, macro-F1 and recall_<class> (per-class recall) over all ``classes``."""
    return classify.classification_metrics(y_true, y_pred, report=classify.LABEL_METRICS, classes=classes)


def channel_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, classes: list[str], prefix: str = "test_channel"
) -> dict[str, float]:
    """Accuracy and macro-F1 on the channel-shifted clips, under ``prefix``."""
    m = classification_metrics(y_true, y_pred, classes)
    return {f"{prefix}_accuracy": m["test_accuracy"], f"{prefix}_macro_f1": m["test_macro_f1"]}


def split_arrays(dm: Any, split: str, channel: bool = False) -> tuple[list[np.ndarray], np.ndarray]:
    """Normalized frames and labels of every clip of ``split`` (through the test channel if ``channel``)."""
    ds = dm.channel_dataset(split) if channel else dm.datasets[split]
    items = [ds[i] for i in range(len(ds))]
    return [x for x, _ in items], np.array([y for _, y in items], dtype=np.int64)


def pooled(frames: list[np.ndarray], stats: str) -> np.ndarray:
    """One vector a clip: time-averaged frames ("mean") or mean and std over time ("mean_std")."""
    mean = np.stack([f.mean(0) for f in frames])
    return mean if stats == "mean" else np.hstack([mean, np.stack([f.std(0) for f in frames])])


def baselines(dm: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    """Majority class and logistic regression (C picked on val), fitted on train, scored on test."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    # one BLAS thread for these fits only: threads spinning on a shared 2-core machine made them ~100x slower
    with threadpool_limits(limits=1):
        Cs = [float(c) for c in (cfg.get("evaluate") or {}).get("logreg_C", [0.01, 0.1, 1.0, 10.0])]
        dm.prepare_data()
        dm.setup("test")
        classes = dm.classes
        (xtr, ytr), (xva, yva), (xte, yte) = (split_arrays(dm, s) for s in ("train", "val", "test"))
        xch, ych = split_arrays(dm, "test", channel=True)
        majority = int(np.bincount(ytr, minlength=len(classes)).argmax())
        result: dict[str, Any] = {
            "baselines": {
                "majority": {
                    **classification_metrics(yte, np.full_like(yte, majority), classes),
                    **channel_metrics(ych, np.full_like(ych, majority), classes),
                }
            },
            "majority_class": classes[majority],
            "chosen_C_on_val": {},
            "val_accuracy_by_C": {},
            "test_predictions": {"majority": [majority] * len(yte)},  # per clip, for the margin's interval
        }
        for name, stats in (("logreg_mean", "mean"), ("logreg_mean_std", "mean_std")):
            ftr, fva, fte = pooled(xtr, stats), pooled(xva, stats), pooled(xte, stats)
            best = pick_on_val(
                Cs,
                lambda C, f=ftr: make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000)).fit(f, ytr),
                lambda C, clf, f=fva: float(clf.score(f, yva)),
            )
            clf = best.model
            result["baselines"][name] = {
                **classification_metrics(yte, clf.predict(fte), classes),
                **channel_metrics(ych, clf.predict(pooled(xch, stats)), classes),
            }
            result["chosen_C_on_val"][name] = best.params
            result["val_accuracy_by_C"][name] = {str(c): v for c, v in best.scores}
            result["test_predictions"][name] = [int(v) for v in clf.predict(fte)]
    return result


def predict_proba(model: torch.nn.Module, frames: list[np.ndarray], batch_size: int = 64) -> np.ndarray:
    """Class probabilities (N, C) for normalized frame sequences (padded and masked in batches)."""
    return classify.predict_proba(model, frames, collate_clips, batch_size)[0]


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def plot_confusion(matrix: np.ndarray, classes: list[str], path: Path, title: str) -> None:
    from matplotlib.figure import Figure  # no pyplot: the user's backend and figures stay untouched

    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.subplots()
    im = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    for i in range(len(classes)):
        for j in range(len(classes)):
            if matrix[i, j]:
                ax.text(
                    j,
                    i,
                    str(matrix[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if matrix[i, j] > matrix.max() / 2 else "black",
                )
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def evaluate(model: torch.nn.Module, dm: Any, cfg: dict[str, Any], base: dict[str, Any], out_dir: Path) -> Evaluation:
    classes = dm.classes
    frames, y = split_arrays(dm, "test")
    proba = predict_proba(model, frames)
    pred = proba.argmax(1)
    metrics = classification_metrics(y, pred, classes)
    metrics["test_clips"] = float(len(y))
    for split, prefix in (("test", "test_channel"), ("val", "val_channel")):
        ch_frames, ch_y = split_arrays(dm, split, channel=True)
        metrics.update(channel_metrics(ch_y, predict_proba(model, ch_frames).argmax(1), classes, prefix))
    val_frames, val_y = split_arrays(dm, "val")
    metrics["val_accuracy"] = float(np.mean(predict_proba(model, val_frames).argmax(1) == val_y))
    matrix = confusion(y, pred, len(classes))
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / "confusion.png"
    plot_confusion(
        matrix, classes, png, f"{cfg['name']}: test accuracy {metrics['test_accuracy']:.3f} (unseen speakers)"
    )
    store = dm.store
    rows = store.records("test")
    files = store.meta["files"]
    pred_csv = out_dir / "predictions.csv"
    with open(pred_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "speaker", "actual", "predicted", "confidence"])
        for r, t, p, pr in zip(rows, y, pred, proba, strict=False):
            w.writerow(
                [files[r], store.meta["groups"][store.index["group"][r]], classes[t], classes[p], f"{pr[p]:.4f}"]
            )
    cm_json = out_dir / "confusion.json"
    cm_json.write_text(json.dumps({"classes": classes, "matrix": matrix.tolist()}, indent=1) + "\n")
    a = store.meta["audio"]
    return Evaluation(
        task="spoken-word classification, test split = speakers never heard in training",
        primary_metric="test_accuracy",
        direction="higher",
        model=metrics,
        baselines=base["baselines"],
        extra={
            "test_speakers": (a.get("speakers_per_split") or {}).get("test"),
            "baseline_C_on_val": base.get("chosen_C_on_val"),
            "clips_per_split": a["clips_per_split"],
            "skipped_inputs": len(a["skipped"]),
            "augmented_train_records": a.get("augmented_copies", {}).get("records", 0),
            "channel_test": {k: v for k, v in a.get("channel_test", {}).items() if k != "clips"},
        },
        shifted_metrics=["test_channel_accuracy"],
        artifacts=[png, pred_csv, cm_json],
        margin=clip_margin(dm, cfg, base, y, pred),
    )


def clip_margin(dm: Any, cfg: dict[str, Any], base: dict[str, Any], y: np.ndarray, pred: np.ndarray) -> dict:
    """Accuracy of model - best baseline with a paired bootstrap over the test clips (each right or wrong)."""
    vs = best_baseline(base["baselines"], "test_accuracy", "higher")
    preds = base.get("test_predictions") or baselines(dm, cfg)["test_predictions"]  # older baselines files
    right = np.asarray(preds[vs]) == y
    return unit_margin((pred == y).astype(float), right.astype(float), vs, unit="test clip (right = 1, wrong = 0)")


def predict(model: torch.nn.Module, paths: list[str]) -> list[dict[str, Any]]:
    """Audio files -> {"file", "label", "probabilities": {class: p}}, features exactly as at preprocess."""
    info = model.hparams.get("data_info") or {}
    if info.get("domain") != "audio":
        raise SeqpipeError(
            f"checkpoint is not an audio model (domain={info.get('domain')!r})",
            fix="pass a checkpoint trained on audio data (e.g. models/audio-crnn/best.ckpt)",
        )
    fc = FeatureConfig(**info["features"])
    mean = np.array(info["normalization"]["mean"], dtype=np.float32)
    std = np.array(info["normalization"]["std"], dtype=np.float32)
    frames = [(clip_features(p, fc) - mean) / std for p in paths]
    proba = predict_proba(model, frames)
    classes = info["classes"]
    return [
        {
            "file": str(p),
            "label": classes[int(pr.argmax())],
            "probabilities": {c: round(float(v), 4) for c, v in zip(classes, pr, strict=False)},
        }
        for p, pr in zip(paths, proba, strict=False)
    ]
