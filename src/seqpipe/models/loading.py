"""Load a trained seqpipe model from its checkpoint, whatever its class."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import torch

from seqpipe.errors import SeqpipeError


def load_model(ckpt: str | Path) -> torch.nn.Module:
    """Load a seqpipe checkpoint on the CPU; the class is the one recorded in the model folder's run.json
    (RecurrentModel for a bare checkpoint without one)."""
    ckpt = Path(ckpt)
    if not ckpt.exists():
        raise SeqpipeError("checkpoint not found", where=ckpt, fix="train first (`dvc repro` or `seqpipe fit`)")
    run_file = ckpt.parent / "run.json"
    class_path = (
        json.loads(run_file.read_text())["model_class"]
        if run_file.exists()
        else "seqpipe.models.recurrent.RecurrentModel"
    )
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise SeqpipeError(
            f"cannot import the checkpoint's model class '{class_path}': {e}",
            where=run_file,
            fix="install the seqpipe version (or extra) that trained it",
        ) from e
    return cls.load_from_checkpoint(ckpt, map_location="cpu")
