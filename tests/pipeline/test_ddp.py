"""Two-process DDP on CPU (gloo): completes, logs exactly one MLflow run, matches single-process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.slow
SEQPIPE = str(Path(sys.executable).with_name("seqpipe"))
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))


def write_config(tmp: Path, name: str, devices: int, batch: int) -> Path:
    cfg = {
        "name": name,
        "domain": "text",
        "seed": 0,
        "data": {
            "class_path": "seqpipe.domains.text.TextDataModule",
            "init_args": {
                "source": "corpus.txt",
                "prepared_dir": "data/prepared/ddp",
                "seq_len": 32,
                "batch_size": batch,
            },
        },
        "model": {
            "class_path": "seqpipe.models.RecurrentModel",
            "init_args": {
                "cell": "gru",
                "hidden_size": 32,
                "num_layers": 1,
                "embedding_dim": 16,
                "lr": 0.01,
                "lr_schedule": "none",
            },
        },
        "trainer": {
            "max_steps": 60,
            "val_check_interval": 60,
            "limit_val_batches": 1.0,
            "accelerator": "cpu",
            "devices": devices,
            "enable_progress_bar": False,
        },
        "fit": {"grad_every_n_steps": 1000},
    }
    if devices > 1:
        cfg["trainer"]["strategy"] = "ddp"
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run(args, cwd, launcher=(SEQPIPE,)):
    env = {**os.environ, "SEQPIPE_THREADS": "1", "OMP_NUM_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    out = subprocess.run([*launcher, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def test_ddp_two_processes_matches_single(tmp_path):
    rng = np.random.default_rng(0)
    words = ["to", "be", "or", "not", "that", "is", "the", "question"]
    (tmp_path / "corpus.txt").write_text(" ".join(rng.choice(words, 12000)) + "\n")
    single = write_config(tmp_path, "single", devices=1, batch=16)
    ddp = write_config(tmp_path, "ddp", devices=2, batch=8)  # same global batch: 2 x 8 = 16
    run(["preprocess", "--config", str(single)], tmp_path)
    run(["fit", "--config", str(single)], tmp_path)
    out = run(["fit", "--config", str(ddp)], tmp_path)
    assert "world_size=2" in out.stdout + out.stderr or "distributed_backend=gloo" in out.stdout + out.stderr

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns/mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["seqpipe-text"], output_format="list")
    names = sorted(r.info.run_name for r in runs)
    assert names == ["ddp", "single"], "DDP must log exactly one run (rank 0 only)"
    by_name = {r.info.run_name: r for r in runs}
    s, d = by_name["single"].data.metrics["val/loss"], by_name["ddp"].data.metrics["val/loss"]
    assert json.loads((tmp_path / "models/ddp/run.json").read_text())["global_steps"] == 60
    assert abs(s - d) / s < 0.05, f"DDP val_loss {d:.4f} vs single {s:.4f}"
    assert not list((tmp_path / "models").glob(".*tmp"))  # no half-written outputs left


def test_torchrun_two_processes_one_model_one_run(tmp_path):
    """Processes started outside Lightning (torchrun): rank 0 alone builds the store, owns the work dir and
    the MLflow run; the result matches the Lightning-launched DDP run of the same config."""
    rng = np.random.default_rng(0)
    words = ["to", "be", "or", "not", "that", "is", "the", "question"]
    (tmp_path / "corpus.txt").write_text(" ".join(rng.choice(words, 12000)) + "\n")
    ddp = write_config(tmp_path, "ddp", devices=2, batch=8)
    run(["fit", "--config", str(ddp)], tmp_path)  # Lightning launches rank 1 (and builds the store first)
    tr = write_config(tmp_path, "torchrun", devices=2, batch=8)
    cfg = yaml.safe_load(tr.read_text())
    cfg["data"]["init_args"]["prepared_dir"] = "data/prepared/torchrun"  # built under torchrun, by rank 0
    tr.write_text(yaml.safe_dump(cfg))
    run(
        ["--nproc-per-node", "2", "-m", "seqpipe", "fit", "--config", str(tr)],
        tmp_path,
        launcher=(TORCHRUN, "--standalone"),
    )

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns/mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["seqpipe-text"], output_format="list")
    assert sorted(r.info.run_name for r in runs) == ["ddp", "torchrun"], "one MLflow run a launch"
    by_name = {r.info.run_name: r for r in runs}
    assert by_name["torchrun"].data.metrics["val/loss"] == pytest.approx(
        by_name["ddp"].data.metrics["val/loss"], rel=1e-4
    )
    assert json.loads((tmp_path / "models/torchrun/run.json").read_text())["global_steps"] == 60
    assert not list((tmp_path / "models").glob(".*tmp"))
