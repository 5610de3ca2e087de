"""Text training step against a plain PyTorch loop (benchmarks/run.py `text`; benchmarks/text.md is a full-size run).

    python benchmarks/run.py text [--full]
    python benchmarks/bench_text.py --config pipelines/text/gru.yaml --set trainer.precision=32-true   # another recipe

1. Framework overhead at the real recipe: the fit stage's own Trainer (seqpipe.trainer.build_trainer:
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
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
import torch
from harness import Result, Samples, alternate, markdown_table, ratio, round_ratios
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from seqpipe.config import instantiate, load_config
from seqpipe.models.core import detach_state
from seqpipe.trainer import _trainer_kwargs, build_trainer, log_every_n_steps

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


SIZES = {"quick": dict(steps=150, warmup=10, rounds=3), "full": dict(steps=500, warmup=20, rounds=7)}


def run(
    quick: bool = True,
    config: str = "pipelines/text/lstm.yaml",
    sets: tuple[str, ...] = (),
    plain_autocast_cache: str = "on",
    threads: int | None = None,
    **sizes: int,
) -> Result:
    """The fit stage's Trainer against a plain loop over the same recipe, alternating; loader rate; memory.
    ``sizes`` (steps, warmup, rounds) override the quick or full ones."""
    size = {**SIZES["quick" if quick else "full"], **{k: v for k, v in sizes.items() if v is not None}}
    args = SimpleNamespace(config=config, set=list(sets), plain_autocast_cache=plain_autocast_cache, **size)
    torch.set_num_threads(threads or int(os.environ.get("SEQPIPE_THREADS") or 1))  # as the pipeline stages
    cfg = recipe(args)
    dm = instantiate(cfg["data"])
    dm.prepare_data()
    dm.setup()
    mem = memory(dm)  # first, before the models allocate
    runs: dict[str, list[tuple[float, ...]]] = {"plain": [], "seqpipe": []}

    def side(name: str, steps):
        def once() -> float:
            runs[name].append(steps(cfg, dm, args))
            return runs[name][-1][0]

        return once

    sides = {"plain": side("plain", plain_steps), "seqpipe": side("seqpipe", seqpipe_steps)}
    alternate(sides, args.rounds)
    wall = {k: Samples([x[0] for x in v]) for k, v in runs.items()}
    cpu = {k: Samples([x[1] for x in v]) for k, v in runs.items()}
    loader = loader_rate(dm)
    kw = _trainer_kwargs(cfg, new_model(cfg, dm))
    m, data = cfg["model"]["init_args"], cfg["data"]["init_args"]
    res = Result("text")
    res.about = (
        f"{config} ({m['cell'].upper()} {m.get('num_layers', 1)}x{m['hidden_size']}, batch {data['batch_size']} x "
        f"{data['seq_len']}, precision {kw['precision']}, {torch.get_num_threads()} thread(s)): the fit stage's own "
        "Trainer (build_trainer: callbacks, MLflow on sqlite) against a hand-written loop over the same model, "
        f"batches, optimizer, schedule, clipping, autocast and weight average; means over {args.steps} steps after "
        f"{args.warmup} untimed, {args.rounds} alternating rounds. CPU time (this process) is less disturbed by "
        "other work than wall clock. Goals: CPU ratio <= 1.05, loader >= 10x the model."
    )
    res.add("training step, seqpipe (wall)", wall["seqpipe"].fmt("ms", 1000, 1))
    res.add("training step, plain PyTorch loop (wall)", wall["plain"].fmt("ms", 1000, 1))
    res.add("ratio seqpipe / plain, wall clock", f"{ratio(wall['seqpipe'], wall['plain']):.3f}")
    res.add("**ratio seqpipe / plain, CPU time (goal <= 1.05)**", f"**{ratio(cpu['seqpipe'], cpu['plain']):.3f}**")
    res.add(
        "CPU-time ratio of each round (sorted)",
        ", ".join(f"{x:.3f}" for x in round_ratios(cpu["seqpipe"], cpu["plain"])),
    )
    train_end = Samples([x[2] for x in runs["seqpipe"]])
    res.add("once a run, not a step: train end (plots, last checkpoint)", train_end.fmt("s", 1, 2))
    res.add("loader / model ratio (goal >= 10)", f"{loader * wall['seqpipe'].median:.0f}x ({loader:.0f} batches/s)")
    res.add("RSS growth over one epoch of train windows", f"{mem['rss_growth'] / 2**20:.1f} MiB")
    res.add("the blog's one-hot X for the same windows", f"{mem['onehot_bytes'] / 2**30:.1f} GiB")
    return res


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="the text benchmark on another recipe (make bench runs the default)")
    p.add_argument("--config", default="pipelines/text/lstm.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="as `seqpipe fit --set`")
    p.add_argument("--full", action="store_true", help="the full-size run (500 steps, 7 rounds)")
    p.add_argument("--steps", type=int, help="timed steps a run")
    p.add_argument("--warmup", type=int, help="untimed steps first")
    p.add_argument("--rounds", type=int, help="alternating rounds")
    p.add_argument("--threads", type=int, help="torch threads (default: SEQPIPE_THREADS or 1, as the stages)")
    p.add_argument(
        "--plain-autocast-cache",
        choices=["on", "off"],
        default="on",
        help="the plain loop's autocast weight cache: on (torch's default) or off (as Lightning 2.6's bf16-mixed)",
    )
    a = p.parse_args()
    r = run(
        not a.full,
        a.config,
        tuple(a.set),
        a.plain_autocast_cache,
        a.threads,
        steps=a.steps,
        warmup=a.warmup,
        rounds=a.rounds,
    )
    print(markdown_table(["measure", "value"], r.rows))
