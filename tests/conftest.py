"""Shared test fixtures. Tests run on CPU, one thread, offline; slow ones carry @pytest.mark.slow."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# trainer.precision: auto caches its measurements here, not in the user's ~/.cache (seqpipe.precision)
os.environ.setdefault("SEQPIPE_CACHE_DIR", tempfile.mkdtemp(prefix="seqpipe-test-cache-"))
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test from an empty working directory with its own MLflow store (mlruns/ under it)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def requires_cuda(n: int = 1):
    """RunIf-style gate: skip unless n CUDA devices are present."""
    return pytest.mark.skipif(torch.cuda.device_count() < n, reason=f"needs {n} CUDA device(s)")
