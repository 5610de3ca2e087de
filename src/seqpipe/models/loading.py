"""Load a trained seqpipe model from its checkpoint, whatever its class, and refuse a damaged one.

Every checkpoint seqpipe writes names its model class (``CLASS_KEY``, so MLflow's copy of a CRNN or Seq2Seq
checkpoint loads on its own), and the model folder's checksums.json records each published checkpoint's SHA-256
(apart from run.json: a checkpoint holds its training folder's absolute path, run.json does not), which loading
checks: a flipped byte is an error naming the file, not a silently different model. Checkpoints are read
with ``weights_only=True``: tensors and plain containers only, never a pickled object that could run code.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from seqpipe.errors import SeqpipeError

CLASS_KEY = "seqpipe_model_class"
CHECKSUMS = "checksums.json"  # models/<name>/checksums.json: {"best.ckpt": sha256}
DEFAULT_CLASS = "seqpipe.models.recurrent.RecurrentModel"  # a bare checkpoint of the first seqpipe versions


def class_path_of(model: Any) -> str:
    return f"{type(model).__module__}.{type(model).__qualname__}"


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def read_checkpoint(ckpt: str | Path) -> dict[str, Any]:
    """The checkpoint's dict (tensors and plain values only), or a one-line error for a truncated or foreign file."""
    try:
        return torch.load(ckpt, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as e:
        raise SeqpipeError(
            f"cannot read the checkpoint ({type(e).__name__}: {(str(e).splitlines() or ['empty file'])[0][:160]})",
            where=ckpt,
            fix="it is truncated, damaged or not a seqpipe checkpoint: retrain (`seqpipe fit`) or restore the file",
        ) from e


def recorded_hashes(model_dir: Path) -> dict[str, str]:
    """The SHA-256 of each checkpoint the model folder published (empty where it recorded none)."""
    path = model_dir / CHECKSUMS
    return json.loads(path.read_text()) if path.is_file() else {}


def check_recorded_hash(ckpt: Path) -> None:
    """Compare the checkpoint with the SHA-256 its model folder recorded when it was published."""
    recorded = recorded_hashes(ckpt.parent)
    if ckpt.name in recorded and file_sha256(ckpt) != recorded[ckpt.name]:
        raise SeqpipeError(
            "the checkpoint's bytes differ from the SHA-256 recorded when it was published",
            where=ckpt,
            fix="the file was changed or damaged after training: retrain it (`seqpipe fit`) or restore it",
        )


def load_model(ckpt: str | Path) -> torch.nn.Module:
    """Load a seqpipe checkpoint on the CPU as the class it records (run.json's for older checkpoints)."""
    ckpt = Path(ckpt)
    if not ckpt.exists():
        raise SeqpipeError("checkpoint not found", where=ckpt, fix="train first (`dvc repro` or `seqpipe fit`)")
    check_recorded_hash(ckpt)
    class_path = read_checkpoint(ckpt).get(CLASS_KEY)
    run_file = ckpt.parent / "run.json"
    if class_path is None:
        class_path = json.loads(run_file.read_text())["model_class"] if run_file.exists() else DEFAULT_CLASS
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise SeqpipeError(
            f"cannot import the checkpoint's model class '{class_path}': {e}",
            where=ckpt,
            fix="install the seqpipe version (or extra, or your own package) that trained it",
        ) from e
    import lightning as L

    if not (isinstance(cls, type) and issubclass(cls, L.LightningModule)):  # a checkpoint is data, not a program
        raise SeqpipeError(
            f"the checkpoint names '{class_path}', which is not a LightningModule", where=ckpt, fix="load a model"
        )
    return cls.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
