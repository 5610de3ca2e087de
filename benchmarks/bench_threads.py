"""How many CPU threads a training process should use: seqpipe's default (1) against 2 threads.

Runs the same short `seqpipe fit` (the text LSTM of pipelines/text/lstm.yaml, 256 units, 32 lanes x 64 chars,
bf16 autocast, 150 steps) in fresh processes under each setting (ROUNDS alternating rounds, medians), once on a
quiet machine and once with a busy-loop process holding one core (what a shared machine looks like), and writes
benchmarks/threads.md. Times are the trainer's own `train_seconds`; compare ratios, not absolutes.

    .venv/bin/python benchmarks/bench_threads.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STEPS = 150
ROUNDS = 1
SETTINGS = {
    "1 thread (seqpipe default)": {"SEQPIPE_THREADS": "1"},
    "2 threads, OpenMP default wait (spin)": {"SEQPIPE_THREADS": "2"},
    "2 threads, OMP_WAIT_POLICY=PASSIVE": {"SEQPIPE_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"},
}


def fit_seconds(env_extra: dict[str, str], work: Path) -> float:
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
        f"trainer.max_steps={STEPS}",
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


def measure(busy: bool) -> dict[str, float]:
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        times: dict[str, list[float]] = {k: [] for k in SETTINGS}
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(ROUNDS):
                for label, env in SETTINGS.items():
                    times[label].append(fit_seconds(env, Path(tmp)))
        return {k: statistics.median(v) for k, v in times.items()}
    finally:
        if hog is not None:
            hog.kill()


def main() -> None:
    if not (REPO / "data/prepared/text/meta.json").exists():
        sys.exit("prepare the text data first: seqpipe preprocess --config pipelines/text/base.yaml")
    quiet, busy = measure(False), measure(True)
    base_q, base_b = quiet["1 thread (seqpipe default)"], busy["1 thread (seqpipe default)"]
    lines = [
        "# Threads per training process",
        "",
        "Reproduce: `.venv/bin/python benchmarks/bench_threads.py` (text LSTM 1x256, 32 lanes x 64 chars, "
        "bf16 autocast, "
        f"{STEPS} steps, {ROUNDS} round(s) alternating the settings, medians; `os.cpu_count()` = {os.cpu_count()}). "
        "Busy = one busy-loop process on one core, as on a shared machine.",
        "",
        "| setting | quiet: train s | quiet: x 1-thread time | busy: train s | busy: x 1-thread time |",
        "|---|---|---|---|---|",
    ]
    for k in SETTINGS:
        lines.append(f"| {k} | {quiet[k]:.1f} | {quiet[k] / base_q:.2f} | {busy[k]:.1f} | {busy[k] / base_b:.2f} |")
    lines += [
        "",
        "seqpipe's stages default to 1 thread (`SEQPIPE_THREADS` overrides): the small matrix products of a "
        "recurrent step gain little from a second thread, and spin-waiting threads collapse when a core is taken.",
        "",
    ]
    out = REPO / "benchmarks/threads.md"
    out.write_text("\n".join(lines))
    print(out.read_text())


if __name__ == "__main__":
    main()
