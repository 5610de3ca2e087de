"""Raw beats (``beats.npz``) -> a seqpipe prepared store, without torch (``seqpipe preprocess`` runs this).

The store holds one flat float32 array ``signal`` (every beat's samples, standardized with the train
split's mean and std) and one index row a beat: offset, length, split, label. Splits are stratified by
class and seeded, so each split keeps the class shares. ``meta.json["ecg_beats"]`` keeps the class names
and the scaling: the datamodule's ``data_info`` hands them to the checkpoint, so ``seqpipe predict``
scales new beats the same way and names their classes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from seqpipe.data.spec import DataSpec
from seqpipe.data.store import (
    SPLIT_CODE,
    PreparedStore,
    StoreWriter,
    check_not_inside_source,
    fingerprint,
)
from seqpipe.errors import SeqpipeError

DOMAIN = "ecg_beats"


def read_beats(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(signal (n, length) float32, class names) of a ``beats.npz``; a bad file is a one-line error."""
    path = Path(path)
    if not path.exists():
        raise SeqpipeError(
            "no beats file here", where=path, fix="generate one: python -m ecg_beats.synth --out data/raw/ecg"
        )
    with np.load(path, allow_pickle=False) as z:
        if not {"signal", "label"} <= set(z.files):
            raise SeqpipeError(f"a beats file needs arrays signal and label, found {sorted(z.files)}", where=path)
        signal, label = z["signal"].astype(np.float32), z["label"].astype(str)
    if signal.ndim != 2 or len(signal) != len(label):
        raise SeqpipeError(
            f"signal must be (beats, samples) with one label a beat, got {signal.shape} and {label.shape}", where=path
        )
    if not np.isfinite(signal).all():
        raise SeqpipeError("signal holds NaN or infinite samples", where=path, fix="drop or repair those beats")
    return signal, label


def stratified_split(labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> np.ndarray:
    """Split code (0 train, 1 val, 2 test) of every beat: each class split by the fractions, seeded."""
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise SeqpipeError(
            f"val_fraction {val_fraction} and test_fraction {test_fraction} must be in (0, 1) and sum below 1",
            where="data.init_args",
        )
    rng = np.random.default_rng(seed)
    split = np.full(len(labels), SPLIT_CODE["train"], dtype=np.int8)
    for cls in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == cls))
        n_test, n_val = max(1, round(len(rows) * test_fraction)), max(1, round(len(rows) * val_fraction))
        split[rows[:n_test]] = SPLIT_CODE["test"]
        split[rows[n_test : n_test + n_val]] = SPLIT_CODE["val"]
    return split


def beat_settings(source: str, val_fraction: float, test_fraction: float, seed: int) -> dict[str, Any]:
    """What the store depends on (recorded in meta.json; fit and evaluate refuse a store built otherwise)."""
    return {"source": str(source), "val_fraction": val_fraction, "test_fraction": test_fraction, "seed": seed}


def build_beat_store(
    source: str = "data/raw/ecg/beats.npz",
    prepared_dir: str | Path = "data/prepared/ecg",
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    batch_size: int = 32,
    num_workers: int = 0,
    seed: int = 0,
    rebuild: bool = False,
) -> PreparedStore:
    """The store a ``BeatDataModule`` with these arguments prepares (it takes exactly the datamodule's
    arguments: a config's ``data.init_args`` are checked against it). Kept as it is unless ``rebuild``."""
    prepared_dir = Path(prepared_dir)
    if not rebuild and (prepared_dir / "meta.json").exists():
        return PreparedStore.open(prepared_dir)
    check_not_inside_source(source, prepared_dir)
    signal, label = read_beats(source)
    classes = sorted(set(label.tolist()))
    if len(classes) < 2:
        raise SeqpipeError(f"need at least two classes, found {classes}", where=source)
    split = stratified_split(label, val_fraction, test_fraction, seed)
    train = signal[split == SPLIT_CODE["train"]]
    mean, std = float(train.mean()), float(train.std()) or 1.0
    settings = beat_settings(source, val_fraction, test_fraction, seed)
    n, length = signal.shape
    spec = DataSpec(input="features", target="class", feature_dim=1, num_classes=len(classes), max_len=length)
    with StoreWriter(prepared_dir, domain=DOMAIN) as w:
        w.append("signal", ((signal - mean) / std).astype(np.float32).reshape(-1))
        ids = np.searchsorted(classes, label)
        w.set_index(offset=np.arange(n) * length, length=np.full(n, length), split=split, label=ids)
        w.commit(
            {
                "name": prepared_dir.name,
                "source": str(source),
                "fingerprint": fingerprint([source], settings),
                "spec": spec.to_dict(),
                "settings": settings,
                DOMAIN: {
                    "classes": classes,
                    "beat_length": length,
                    "mean": mean,
                    "std": std,
                    "class_counts": {c: int((label == c).sum()) for c in classes},
                },
            }
        )
    return PreparedStore.open(prepared_dir)
