"""The second CPU core for one training run: 2 DDP processes of 16 lanes against 1 process of 32 lanes.

`seqpipe fit` runs one process with one intra-op thread (a second thread gains nothing for recurrent steps,
benchmarks/threads.md), so on a 2-core machine the second core idles. Data parallelism uses it: two ranks, each
half of the truncated-BPTT lanes (the text datamodule cuts the corpus into batch_size x world lanes and
Lightning's sampler gives rank r every other lane), gradients averaged over gloo. Same global batch, same lanes,
so the same learning problem; this measures the wall time of the whole `seqpipe fit` command (Lightning's
process launch included) and the validation bits a character it reaches, for the text LSTM at two widths.
Writes benchmarks/probes/ddp_cpu.md.

    python benchmarks/probes/bench_ddp_cpu.py [--steps 1000] [--widths 256 384]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODES = {
    "1 process x 32 lanes": ["--set", "data.init_args.batch_size=32"],
    "2 DDP processes x 16 lanes": [
        "--set",
        "data.init_args.batch_size=16",
        "--set",
        "trainer.devices=2",
        "--set",
        "trainer.accelerator=cpu",
    ],
}


def commit() -> str:
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return git.stdout.strip() or "unknown"


def fit(work: Path, name: str, width: int, steps: int, extra: list[str]) -> dict:
    seqpipe = Path(sys.executable).with_name("seqpipe")
    cmd = [str(seqpipe), "fit", "--config", "pipelines/text/lstm.yaml", "--set", f"name={name}"]
    cmd += ["--set", f"trainer.max_steps={steps}", "--set", f"trainer.val_check_interval={steps // 2}"]
    cmd += ["--set", f"model.init_args.hidden_size={width}", *extra]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=work, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    run = json.loads((work / "models" / name / "run.json").read_text())
    training = json.loads((work / "models" / f"{name}.training.json").read_text())
    return {
        "wall": wall,
        "train": training["train_seconds"],
        "val_bpc": run["best_score"] / math.log(2),
        "steps": run["global_steps"],
        "precision": training["precision"],
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--widths", type=int, nargs="+", default=[256, 384])
    args = p.parse_args()
    rows = [
        "| LSTM width | run | `seqpipe fit` wall s | train s | val bits/char | precision | speedup (wall) |",
        "|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "data" / "prepared").mkdir(parents=True)
        os.symlink(ROOT / "pipelines", work / "pipelines")
        os.symlink(ROOT / "data" / "prepared" / "text", work / "data" / "prepared" / "text")
        for width in args.widths:
            results = {}
            for i, (mode, extra) in enumerate(MODES.items()):
                results[mode] = r = fit(work, f"ddp-bench-{width}-{i}", width, args.steps, extra)
                shutil.rmtree(work / "mlruns", ignore_errors=True)
                base = next(iter(results.values()))["wall"]
                rows.append(
                    f"| {width} | {mode} | {r['wall']:.1f} | {r['train']:.1f} | {r['val_bpc']:.3f} | "
                    f"{r['precision']} | {base / r['wall']:.2f}x |"
                )
                print(rows[-1], flush=True)
    text = "\n".join(
        [
            "# The second core for one text run: DDP on CPU",
            "",
            "`python benchmarks/probes/bench_ddp_cpu.py "
            f"--steps {args.steps} --widths {' '.join(map(str, args.widths))}` "
            f"(commit {commit()}, the shipped `pipelines/text/lstm.yaml`, {args.steps} steps, "
            f"validation every {args.steps // 2}; "
            f"{os.cpu_count()} cores; one thread a process). Wall: the whole `seqpipe fit` command, from launch to "
            "published model, so the DDP row pays for starting the second process and the gloo group; train: the "
            "seconds the run records for training alone. Same global batch (32 lanes of 64 characters) and the same "
            "lanes either way: the same learning problem, whose bits a character differ as two runs with other "
            "floating-point rounding do (bf16 sums, summed in another order).",
            "",
            *rows,
            "",
            "To train a text model on both cores: `seqpipe fit --config pipelines/text/lstm.yaml --set "
            "trainer.accelerator=cpu --set trainer.devices=2 --set data.init_args.batch_size=16`.",
            "",
        ]
    )
    Path(__file__).with_name("ddp_cpu.md").write_text(text)


if __name__ == "__main__":
    main()
