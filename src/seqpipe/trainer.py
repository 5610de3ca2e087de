"""The Lightning Trainer a fit trains with: the config's trainer settings made concrete for this machine (precision
measured where it says ``auto``, logging cadence, progress bar) and the default callbacks.

benchmarks/bench_text.py times this very trainer against a plain PyTorch loop.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from seqpipe import precision, runs
from seqpipe.errors import SeqpipeError

log = logging.getLogger("seqpipe.training")  # its lines read as the fit stage's, as before the split


def _trainer_kwargs(cfg: dict[str, Any], model: torch.nn.Module | None = None) -> dict[str, Any]:
    kw = dict(cfg.get("trainer") or {})
    kw.setdefault("gradient_clip_val", 1.0)  # clipping by norm is on by default
    kw.setdefault("gradient_clip_algorithm", "norm")
    kw.setdefault("enable_progress_bar", True)
    # every logged step costs a self.log pass and an MLflow write (~3 ms): every 50 steps keeps 200 points of a
    # 10k-step curve; a short run logs every max_steps / 20 steps so its curve still has points
    kw.setdefault("log_every_n_steps", log_every_n_steps(kw.get("max_steps")))
    kw.setdefault("accelerator", "auto")
    kw.setdefault("devices", "auto" if kw.get("accelerator") != "cpu" else 1)
    if kw.get("devices") not in (1, "1", "auto", None) or int(kw.get("num_nodes", 1)) > 1:
        kw.setdefault("strategy", "ddp")
    on_gpu = torch.cuda.is_available() and kw.get("accelerator") != "cpu"
    # same config + seed + machine = same bits: deterministic kernels (on GPU Lightning also sets
    # CUBLAS_WORKSPACE_CONFIG=:4096:8, which cuDNN RNNs need; "warn" as a few CUDA ops have no
    # deterministic version and would otherwise stop the run)
    kw.setdefault("deterministic", "warn" if on_gpu else True)
    if kw.get("precision") is None:
        kw["precision"] = "bf16-mixed" if on_gpu else "32-true"
    elif kw["precision"] == "auto":  # the measured rule (seqpipe.precision): bf16 where it is faster here
        kw["precision"] = "bf16-mixed" if on_gpu else _auto_cpu_precision(cfg, model)
    elif kw["precision"] == "bf16-mixed" and not on_gpu and not precision.cpu_has_fast_bf16():
        log.info("oneDNN has no bf16 on this CPU (needs AVX-512 or newer): training in 32-bit instead of bf16-mixed")
        kw["precision"] = "32-true"
    return kw


def log_every_n_steps(max_steps: int | None) -> int:
    """The default logging interval: every 50 steps, or max_steps / 20 for a short run (>= 20 points a curve)."""
    steps = int(max_steps or -1)
    return max(1, min(50, steps // 20)) if steps > 0 else 50


def _auto_cpu_precision(cfg: dict[str, Any], model: torch.nn.Module | None) -> str:
    """Measure (or read the cached measurement of) the model's recurrent layers at the run's batch and window."""
    if model is None:
        raise SeqpipeError(
            "trainer.precision: auto needs the model to measure",
            where=cfg.get("config_path"),
            fix="pass the built model to build_trainer/_trainer_kwargs, or set trainer.precision explicitly",
        )
    data = (cfg.get("data") or {}).get("init_args") or {}
    choice = precision.choose(model, batch=int(data.get("batch_size", 32)), seq_len=int(data.get("seq_len", 64)))
    log.info(
        "trainer.precision auto -> %s (bf16/32-bit step time %s, %s)",
        choice["precision"],
        choice.get("bf16_over_32bit"),
        choice["reason"],
    )
    return choice["precision"]


def build_trainer(
    cfg: dict[str, Any], work_dir: Path, logger: Any, model: torch.nn.Module, extra_callbacks: tuple = ()
) -> Any:
    """The Lightning Trainer the fit stage trains with: the config's trainer settings and the default callbacks
    (best/last checkpoint, LR monitor, gradient-through-time sampling, learning curve, RNG state; with
    ``fit.ema_decay`` the weights' moving average).

    benchmarks/bench_text.py times this very trainer against a plain PyTorch loop.
    """
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar

    from seqpipe.callbacks import GradientThroughTime, LearningCurve, LearningRates, ModelClassInCheckpoint, WeightEMA
    from seqpipe.guards import NonFiniteLoss

    fit_cfg = cfg.get("fit") or {}
    monitor = fit_cfg.get("monitor", "val_loss")
    callbacks = [
        ModelCheckpoint(
            dirpath=work_dir,
            filename="best",
            monitor=monitor,
            mode=fit_cfg.get("mode", "min"),
            save_last=True,
            save_top_k=1,
        ),
        LearningRates(),
        GradientThroughTime(
            every_n_steps=int(fit_cfg.get("grad_every_n_steps", 100)), out_dir=work_dir, title=cfg.get("name", "")
        ),
        LearningCurve(work_dir / "learning_curve.csv"),
        runs.RngState(),
        ModelClassInCheckpoint(),
        NonFiniteLoss.from_fit(fit_cfg, cfg.get("config_path")),
    ]
    if fit_cfg.get("checkpoint_every_n_steps"):  # last.ckpt between validations: a crash loses at most N steps
        callbacks.append(
            ModelCheckpoint(
                dirpath=work_dir,
                save_last=True,
                save_top_k=0,
                every_n_train_steps=int(fit_cfg["checkpoint_every_n_steps"]),
            )
        )
    if fit_cfg.get("ema_decay") is not None:
        callbacks.append(
            WeightEMA(fit_cfg["ema_decay"], fit_cfg.get("ema_every_n_steps", 1), where=cfg.get("config_path"))
        )
    if fit_cfg.get("early_stopping_patience"):
        callbacks.append(
            EarlyStopping(
                monitor=monitor, mode=fit_cfg.get("mode", "min"), patience=int(fit_cfg["early_stopping_patience"])
            )
        )
    kw = _trainer_kwargs(cfg, model)
    if kw["enable_progress_bar"]:  # redrawn when metrics are logged, not every step (Rich's default redraws each)
        callbacks.append(TQDMProgressBar(refresh_rate=max(1, int(kw["log_every_n_steps"]))))
    return L.Trainer(
        logger=logger,
        callbacks=[*callbacks, *extra_callbacks],
        default_root_dir=str(work_dir),
        plugins=[runs.AtomicCheckpointIO()],
        **kw,
    )


def stopped_by_time(trainer: Any) -> bool:
    """Whether trainer.max_time (Lightning's Timer), not the step/epoch budget, ended training."""
    from lightning.pytorch.callbacks import Timer

    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    return bool(timer is not None and timer.time_remaining("train") is not None and timer.time_remaining("train") <= 0)
