"""The optimizer and learning-rate schedule every seqpipe model trains with (a model's ``configure_optimizers``)."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch

from seqpipe.errors import SeqpipeError


def configure_optimizer(module: L.LightningModule, hp: Any) -> Any:
    """AdamW / Adam / RMSprop with a cosine (warmup), plateau or constant schedule."""
    params = [p for p in module.parameters() if p.requires_grad]
    name = hp.optimizer
    fused = bool(hp.get("fused_optimizer", False)) or None  # None: torch's default (a loop over the tensors)
    if fused and name not in ("adamw", "adam"):
        raise SeqpipeError(
            f"fused_optimizer needs adamw or adam, not '{name}'", where="model.fused_optimizer", fix="remove it"
        )
    if name == "adamw":
        opt = torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay, fused=fused)
    elif name == "adam":
        opt = torch.optim.Adam(params, lr=hp.lr, fused=fused)
    elif name == "rmsprop":
        opt = torch.optim.RMSprop(params, lr=hp.lr, weight_decay=hp.weight_decay)
    else:
        raise SeqpipeError(f"unknown optimizer '{name}'", where="model.optimizer", fix="use adamw, adam or rmsprop")
    if hp.lr_schedule == "none":
        return opt
    if hp.lr_schedule == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}
    if hp.lr_schedule != "cosine":
        raise SeqpipeError(f"unknown lr_schedule '{hp.lr_schedule}'", fix="use cosine, plateau or none")
    total = max(1, int(module.trainer.estimated_stepping_batches))
    warm = min(hp.warmup_steps, total // 10 + 1)

    def factor(step: int) -> float:  # a function of the step alone: wall clock never moves the schedule
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total - warm)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
