"""Text benchmarks -> benchmarks/text.md. Reproduce with:  .venv/bin/python benchmarks/bench_text.py

1. Framework overhead at the real recipe: the fit stage's own Trainer (seqpipe.training.build_trainer:
   the config's trainer settings, precision rule, clipping, and the default callbacks -- checkpointing,
   LR monitor, gradient-through-time sampling, learning curve, RNG state -- logging to a real MLflow store)
   against a plain PyTorch loop over the same model, the same batches (the datamodule's truncated-BPTT
   loader), the same optimizer, schedule, clipping, autocast, carried state and moving average of the weights.
   Runs alternate (plain, seqpipe, plain, ...) and the table reports the ratio of mean step times over the same
   steps, so machine noise hits both alike and periodic work (metric logging every log_every_n_steps, a
   gradient-through-time replay every fit.grad_every_n_steps) is paid at the recipe's rate. Goal: <= 1.05x. The
   last step ends at its batch end: the once-a-run work at train end (plots, last checkpoint) has its own line in
   the table.
2. DataLoader batches/s vs training steps/s. Goal: >= 10x (the loader never starves the model).
3. Memory: resident-set growth while iterating an epoch of windows over the memory-mapped store,
   against the corpus size and against the blog's one-hot X (N windows x seq_len x vocab bools).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from seqpipe.config import instantiate, load_config
from seqpipe.models.core import detach_state
from seqpipe.training import _trainer_kwargs, build_trainer, log_every_n_steps

ROOT = Path(__file__).resolve().parents[1]


def recipe(args) -> dict:
    """The shipped experiment config, its budget cut to the timed steps (no validation inside them)."""
    steps = args.warmup + args.steps
    full = load_config(ROOT / args.config, args.set)["trainer"]  # the whole run's logging interval, not the cut one's
    overrides = [f"trainer.max_steps={steps}", f"trainer.val_check_interval={steps + 1}"]
    overrides.append(
        f"trainer.log_every_n_steps={full.get('log_every_n_steps', log_every_n_steps(full.get('max_steps')))}"
    )
    cfg = load_config(ROOT / args.config, [*args.set, *overrides])
    cfg["data"]["init_args"]["prepared_dir"] = str(ROOT / cfg["data"]["init_args"]["prepared_dir"])
    return cfg


def new_model(cfg, dm):
    torch.manual_seed(int(cfg.get("seed", 0)))
    return instantiate(cfg["model"], spec=dm.spec.to_dict(), data_info=dm.data_info())


class StepClock:
    """(wall, CPU) at every training step's start: the step is everything until the next one starts."""

    def __init__(self):
        self.t: list[tuple[float, float]] = []

    def tick(self) -> None:
        self.t.append((time.perf_counter(), time.process_time()))

    def means(self, warmup: int) -> tuple[float, float]:
        a, b = self.t[warmup], self.t[-1]
        n = len(self.t) - 1 - warmup
        return (b[0] - a[0]) / n, (b[1] - a[1]) / n


def seqpipe_steps(cfg, dm, args) -> tuple[float, float, float]:
    """(wall, CPU) seconds a step, and the once-a-run seconds from the last step's end to fit's return."""
    import lightning as L
    from lightning.pytorch.loggers import MLFlowLogger

    clock = StepClock()

    class Clock(L.Callback):
        last_end: tuple[float, float] | None = None

        def on_train_batch_start(self, *a):
            clock.tick()

        def on_train_batch_end(self, *a):
            self.last_end = (time.perf_counter(), time.process_time())

        def on_train_end(self, *a):
            # the last step ends at its batch end: the once-a-run work at train end (the learning-curve and
            # gradient plots, ~0.5 s) is not a step's cost, and over 500 steps it would add ~1 ms to each
            clock.t.append(self.last_end)

    with tempfile.TemporaryDirectory() as tmp:
        logger = MLFlowLogger(experiment_name="bench", tracking_uri=f"sqlite:///{tmp}/mlflow.db", artifact_location=tmp)
        model = new_model(cfg, dm)
        trainer = build_trainer(cfg, Path(tmp), logger, model, extra_callbacks=(Clock(),))
        trainer.fit(model, datamodule=dm)
        train_end = time.perf_counter() - clock.t[-1][0]
    return (*clock.means(args.warmup), train_end)


def plain_steps(cfg, dm, args) -> tuple[float, float]:
    """What a user would write by hand for the same recipe: no framework, no callbacks, no logging."""
    model = new_model(cfg, dm)
    # the model's own optimizer and schedule; the cosine schedule reads the step budget from its trainer
    model._trainer = SimpleNamespace(estimated_stepping_batches=cfg["trainer"]["max_steps"])
    conf = model.configure_optimizers()
    model._trainer = None
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    total = cfg["trainer"]["max_steps"]
    bf16 = _trainer_kwargs(cfg, model)["precision"] == "bf16-mixed"  # what the fit stage chooses here
    clip = float(cfg["trainer"].get("gradient_clip_val", 1.0))
    fit_cfg, ema = cfg.get("fit") or {}, None
    if fit_cfg.get("ema_decay") is not None:  # the recipe's moving average of the weights, the same fused update
        every = int(fit_cfg.get("ema_every_n_steps", 1))
        decay = float(fit_cfg["ema_decay"]) ** every
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False)
    dm.setup()
    model.train()
    clock, state = StepClock(), None
    for i, batch in enumerate(dm.train_dataloader()):
        clock.tick()
        if i == total:
            break
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16, cache_enabled=args.plain_autocast_cache == "on"):
            output, new_state = model(batch["inputs"], None, state)
            loss, _ = model.loss_and_metrics(output, batch["targets"])
        state = detach_state(new_state)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        sched.step()
        if ema is not None and i % every == 0:
            ema.update_parameters(model)
    return clock.means(args.warmup)


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
    p.add_argument("--config", default="pipelines/text/lstm.yaml", help="the recipe (experiment YAML)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="config override, as `seqpipe fit --set`"
    )
    p.add_argument(
        "--plain-autocast-cache",
        choices=["on", "off"],
        default="on",
        help="the plain loop's autocast weight cache: on (torch's default) or off (as Lightning 2.6's bf16-mixed)",
    )
    p.add_argument("--steps", type=int, default=500, help="timed steps a run (covers one gradient replay at 500)")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("SEQPIPE_THREADS") or 1),
        help="torch threads (default: SEQPIPE_THREADS or 1, as the pipeline stages)",
    )
    p.add_argument("--out", default=str(ROOT / "benchmarks/text.md"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = recipe(args)
    dm = instantiate(cfg["data"])
    dm.prepare_data()
    dm.setup()
    mem = memory(dm)  # first, before the models allocate
    light, plain = [], []
    for r in range(args.rounds):
        plain.append(plain_steps(cfg, dm, args))
        light.append(seqpipe_steps(cfg, dm, args))
        print(f"round {r}: plain {plain[-1]}, seqpipe {light[-1]}", flush=True)
    step_l, step_p = statistics.median(x[0] for x in light), statistics.median(x[0] for x in plain)
    cpu_l, cpu_p = statistics.median(x[1] for x in light), statistics.median(x[1] for x in plain)
    ratios = sorted(a[1] / b[1] for a, b in zip(light, plain, strict=True))
    loader = loader_rate(dm)
    kw = _trainer_kwargs(cfg, new_model(cfg, dm))
    model = cfg["model"]["init_args"]
    rows = [
        ("training step, seqpipe (the fit stage's Trainer and callbacks)", f"{step_l * 1000:.1f} ms"),
        ("training step, plain PyTorch loop", f"{step_p * 1000:.1f} ms"),
        ("ratio seqpipe / plain, wall clock", f"{step_l / step_p:.3f}"),
        ("training step CPU time, seqpipe / plain", f"{cpu_l * 1000:.1f} ms / {cpu_p * 1000:.1f} ms"),
        ("**ratio seqpipe / plain, CPU time (goal <= 1.05)**", f"**{cpu_l / cpu_p:.3f}**"),
        ("CPU-time ratio of each round (sorted)", ", ".join(f"{x:.3f}" for x in ratios)),
        (
            "once a run, not a step: train end (gradient and learning-curve plots, last checkpoint)",
            f"{statistics.median(x[2] for x in light):.2f} s",
        ),
        ("DataLoader batches/s", f"{loader:.0f}"),
        ("model steps/s", f"{1 / step_l:.2f}"),
        ("loader / model ratio (goal >= 10)", f"{loader * step_l:.0f}x"),
        ("corpus characters (all splits)", f"{mem['corpus_chars']:,}"),
        ("prepared store on disk (tokens.bin)", f"{mem['store_bytes'] / 2**20:.1f} MiB (1 byte a char)"),
        ("RSS growth over one epoch of train windows", f"{mem['rss_growth'] / 2**20:.1f} MiB"),
        ("the blog's one-hot X for the same windows", f"{mem['onehot_bytes'] / 2**30:.1f} GiB"),
    ]
    data = cfg["data"]["init_args"]
    text = (
        "# Text benchmarks\n\n"
        f"Reproduce: `.venv/bin/python benchmarks/bench_text.py --config {args.config} "
        f"{''.join(f'--set {o} ' for o in args.set)}--plain-autocast-cache {args.plain_autocast_cache} "
        f"--steps {args.steps} "
        f"--warmup {args.warmup} --rounds {args.rounds} --threads {args.threads}` (the recipe: "
        f"{model['cell'].upper()} {model.get('num_layers', 1)}x{model['hidden_size']}, batch {data['batch_size']} x "
        f"{data['seq_len']}, truncated BPTT, precision {kw['precision']}, clipping {kw['gradient_clip_val']}, "
        f"metrics logged every {kw['log_every_n_steps']} steps to MLflow (sqlite), a gradient-through-time replay "
        f"every {(cfg.get('fit') or {}).get('grad_every_n_steps')} steps; means over {args.steps} steps after "
        f"{args.warmup} untimed, medians of {args.rounds} alternating rounds; {torch.get_num_threads()} thread(s), "
        f"{os.cpu_count()} CPUs shared with other work, load average {os.getloadavg()[0]:.1f} at the end).\n\n"
        "| measure | value |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows) + "\n"
        "\nMachine-dependent: compare the ratios, not the absolute times (shared, noisy machines). CPU time (this "
        "process) is less disturbed by other processes than wall clock; both sides run in one process, alternating.\n"
    )
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
