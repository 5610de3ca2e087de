"""Where a seqpipe training step spends its time beyond the model's own work (cProfile).

    python benchmarks/probes/profile_text_step.py [--config pipelines/text/lstm.yaml] [--steps 500]

Profiles the fit stage's own Trainer (seqpipe.trainer.build_trainer: the recipe's precision, clipping, default
callbacks, MLflow logging to a scratch sqlite store) on the text recipe, as benchmarks/bench_text.py times it, and
prints, per training step, the cumulative time of the main Lightning, seqpipe and model entry points. cProfile
inflates Python-heavy code (hooks, logging) more than C++ kernels: read the rows as a ranking of overhead
sources, not as exact milliseconds.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
from pathlib import Path

import torch

from seqpipe.config import instantiate, load_config
from seqpipe.trainer import build_trainer, log_every_n_steps

ROOT = Path(__file__).resolve().parents[2]

ENTRY_POINTS = [  # (label, file fragment, function name)
    ("whole fit loop: one step", "loops/training_epoch_loop.py", "advance"),
    ("fetching the batch (DataLoader + Lightning's fetcher)", "loops/fetchers.py", "__next__"),
    ("optimizer step incl. closure (forward + backward inside)", "core/module.py", "optimizer_step"),
    ("closure: training_step + backward", "loops/optimization/automatic.py", "closure"),
    ("training_step (model forward + loss + self.log on logged steps)", "models/recurrent.py", "training_step"),
    ("model forward", "models/recurrent.py", "forward"),
    ("self.log (model and callbacks)", "core/module.py", "log"),
    ("backward (Lightning's wrapper)", "core/module.py", "backward"),
    ("torch backward", "torch/autograd/__init__.py", "backward"),
    ("gradient clipping (Lightning)", "core/module.py", "clip_gradients"),
    (
        "gradient clipping (the model's override, with a fused optimizer)",
        "models/recurrent.py",
        "configure_gradient_clipping",
    ),
    ("torch AdamW step", "torch/optim/adamw.py", "step"),
    ("torch Adam step (AdamW's, where AdamW subclasses Adam)", "torch/optim/adam.py", "step"),
    ("zero_grad (Lightning)", "loops/optimization/automatic.py", "_on_before_step"),
    ("callback/hook dispatch (includes on_train_end's plot, once)", "trainer/call.py", "_call_callback_hooks"),
    ("gradient-through-time replay", "seqpipe/callbacks.py", "hidden_gradient_norms"),
    ("MLflow logger: log_metrics", "loggers/mlflow.py", "log_metrics"),
    ("progress bar: on_train_batch_end", "progress/tqdm_progress.py", "on_train_batch_end"),
    (
        "logger connector: step-end metric updates",
        "connectors/logger_connector/logger_connector.py",
        "update_train_step_metrics",
    ),
    ("result collection: metric update", "connectors/logger_connector/result.py", "update"),
    ("on_train_batch_end machinery", "loops/training_epoch_loop.py", "on_advance_end"),
]


def recipe(args) -> dict:
    """The shipped experiment config, its budget cut to the profiled steps (as benchmarks/bench_text.py's recipe)."""
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


def main() -> None:
    from lightning.pytorch.loggers import MLFlowLogger

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="pipelines/text/lstm.yaml")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="config override, as `seqpipe fit --set`"
    )
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "text_step_profile.md"))
    args = p.parse_args()
    args.warmup = 0
    torch.set_num_threads(1)
    cfg = recipe(args)
    dm = instantiate(cfg["data"])
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        logger = MLFlowLogger(experiment_name="profile", tracking_uri=uri, artifact_location=tmp)
        model = new_model(cfg, dm)
        trainer = build_trainer(cfg, Path(tmp), logger, model)
        prof = cProfile.Profile()
        prof.enable()
        trainer.fit(model, datamodule=dm)
        prof.disable()
    stats = pstats.Stats(prof).stats
    rows = []
    for label, frag, name in ENTRY_POINTS:
        hits = [(v[3], v[1]) for (f, _, fn), v in stats.items() if fn == name and f.endswith(frag)]
        if hits:
            cum = sum(h[0] for h in hits)
            calls = sum(h[1] for h in hits)
            rows.append(f"| {label} | {cum / args.steps * 1000:.2f} ms | {calls / args.steps:.2f} |")
    md = [
        "# Text: where a seqpipe training step's time goes beyond the model",
        "",
        "Reproduce: `python benchmarks/probes/profile_text_step.py "
        f"--config {args.config} --steps {args.steps}` (the fit"
        " stage's Trainer and default callbacks, MLflow on sqlite, 1 thread; the recipe's log interval"
        f" {trainer.log_every_n_steps} and gradient replay every"
        f" {(cfg.get('fit') or {}).get('grad_every_n_steps')} steps; {os.cpu_count()} CPUs shared, load average"
        f" {os.getloadavg()[0]:.1f}).",
        "",
        f"cProfile, cumulative time a step over {args.steps} steps, setup and the end-of-training plot included (the"
        " profiler inflates Python code such as hooks and logging more than the C++ kernels: a ranking, not exact"
        " costs; benchmarks/text.md has the unprofiled ratio against a plain loop):",
        "",
        "| entry point | cumulative a step | calls a step |",
        "|---|---|---|",
        *rows,
    ]
    Path(args.out).write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
