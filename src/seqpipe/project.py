"""What every stage of a project shares: its output folders, one thread a process, building the datamodule.

Both the stages (seqpipe.stages) and training (seqpipe.training) read these, so neither imports the other's
internals (stages calls training's ``fit`` only).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from seqpipe.config import instantiate

MODELS = Path("models")
REPORTS = Path("reports")


def configure_threads() -> None:
    """One intra-op thread unless SEQPIPE_THREADS says otherwise.

    Recurrent steps are many small matrix products: a second thread gains little, passively waiting threads
    lose to the hand-offs, and spinning ones collapse once another process takes a core. Measured on 2 cores
    (benchmarks/threads.md, 256-unit LSTM): 2 spinning threads take 1.1x the time of 1 on a quiet machine and
    3.9x with a busy core; 2 passive ones 2.5x and 1.4x. Set SEQPIPE_THREADS=N for large models on many cores.
    """
    import torch

    torch.set_num_threads(int(os.environ.get("SEQPIPE_THREADS") or 1))


def make_datamodule(cfg: dict[str, Any], **extra: Any) -> Any:
    return instantiate(cfg["data"], **extra)


def training_record(name: str) -> Path:
    """models/<name>.training.json: the MLflow run id, train seconds, hardware and resume point of the last fit
    (kept out of models/<name>/ so that folder is the same bits on every rerun)."""
    return MODELS / f"{name}.training.json"
