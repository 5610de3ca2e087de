"""How many CPU threads a training process should use: seqpipe's default (1) against 2 threads.

Runs the same short `seqpipe fit` (the text LSTM of pipelines/text/lstm.yaml, 256 units, 32 lanes x 64 chars,
bf16 autocast, 100 steps; 150 with --full) in fresh processes under each setting, once on a quiet machine and once
with a busy-loop process holding one core (what a shared machine looks like). Times are the trainer's own
`train_seconds`; compare ratios, not absolutes. seqpipe's default of 1 thread (SEQPIPE_THREADS) rests on it.

    python benchmarks/run.py threads [--full]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import ROOT as REPO
from harness import Result, alternate

SIZES = {"quick": dict(steps=100, rounds=1), "full": dict(steps=150, rounds=1)}
SETTINGS = {
    "1 thread (seqpipe default)": {"SEQPIPE_THREADS": "1"},
    "2 threads, OpenMP default wait (spin)": {"SEQPIPE_THREADS": "2"},
    "2 threads, OMP_WAIT_POLICY=PASSIVE": {"SEQPIPE_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"},
}


def fit_seconds(env_extra: dict[str, str], work: Path, steps: int) -> float:
    env = {
        k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "SEQPIPE_THREADS", "MLFLOW_TRACKING_URI")
    }
    env.update(env_extra, MLFLOW_TRACKING_URI=f"sqlite:///{work}/mlflow.db", MLFLOW_DISABLE_TELEMETRY="true")
    name = "bench-threads"
    cmd = [
        sys.executable,
        "-m",
        "seqpipe.cli",
        "fit",
        "--config",
        str(REPO / "pipelines/text/lstm.yaml"),
        "--set",
        f"name={name}",
        "--set",
        "data.init_args.batch_size=32",
        "--set",
        f"data.init_args.prepared_dir={REPO / 'data/prepared/text'}",
        "--set",
        "trainer.precision=bf16-mixed",
        "--set",
        f"trainer.max_steps={steps}",
        "--set",
        "trainer.max_time=null",
        "--set",
        "trainer.val_check_interval=50",
        "--set",
        "trainer.limit_val_batches=2",
        "--set",
        "trainer.enable_progress_bar=false",
        "--set",
        "fit.grad_every_n_steps=1000",
    ]
    subprocess.run(cmd, cwd=work, env=env, check=True, capture_output=True)
    return float(json.loads((work / "models" / f"{name}.training.json").read_text())["train_seconds"])


def measure(busy: bool, steps: int, rounds: int) -> dict[str, float]:
    """Median train seconds of each setting, quiet or beside a busy loop holding one core."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            runs = {k: (lambda env=env: fit_seconds(env, Path(tmp), steps)) for k, env in SETTINGS.items()}
            return {k: v.median for k, v in alternate(runs, rounds).items()}
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()


def prepare_text() -> None:
    """The store the fits read (data/prepared/text), built as `seqpipe preprocess` would if it is missing."""
    if (REPO / "data/prepared/text/meta.json").exists():
        return
    from seqpipe.config import instantiate, load_config

    cfg = load_config(REPO / "pipelines/text/lstm.yaml")
    cfg["data"]["init_args"]["prepared_dir"] = str(REPO / cfg["data"]["init_args"]["prepared_dir"])
    instantiate(cfg["data"]).prepare_data()


def run(quick: bool = True) -> Result:
    size = SIZES["quick" if quick else "full"]
    prepare_text()
    quiet, busy = measure(False, **size), measure(True, **size)
    base_q, base_b = quiet["1 thread (seqpipe default)"], busy["1 thread (seqpipe default)"]
    r = Result("threads")
    for k in SETTINGS:
        r.add(
            f"{k}: train s, x 1-thread time (quiet / one core busy)",
            f"{quiet[k]:.1f} s, {quiet[k] / base_q:.2f}x / {busy[k]:.1f} s, {busy[k] / base_b:.2f}x",
        )
    r.about = (
        f"`seqpipe fit` of the text LSTM (1x256, 32 lanes x 64 chars, bf16 autocast, {size['steps']} steps) in a fresh "
        f"process a setting, {size['rounds']} round(s); busy = a busy-loop process on one core. The stages default to "
        "1 thread: a recurrent step's small matrix products gain little from a second one, and spinning threads "
        "collapse when a core is taken."
    )
    return r
