"""Stop a fit whose training loss stays NaN/inf, instead of training on and publishing garbage.

A diverged run or poisoned data gives a non-finite loss on every step after the first bad one; Lightning
trains on regardless. ``NonFiniteLoss`` counts consecutive non-finite steps on the loss's own device (no host
sync each step: the count is read every ``max_steps`` steps) and raises a one-line SeqpipeError once it reaches
``fit.max_nonfinite_steps``, so the fit ends with exit status 2 and publishes nothing. A loss that recovers resets
the count. It draws no random numbers and keeps no checkpoint state, so a finite run's numbers are untouched.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from seqpipe.errors import SeqpipeError

DEFAULT_MAX_NONFINITE_STEPS = 20


class NonFiniteLoss(L.Callback):
    """Raise once the training loss has been non-finite for ``max_steps`` consecutive steps (read every
    ``max_steps`` batches, so it stops at most ``2 * max_steps - 1`` steps after the loss went bad for good)."""

    def __init__(self, max_steps: int = DEFAULT_MAX_NONFINITE_STEPS, where: str | None = None):
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise SeqpipeError(
                f"fit.max_nonfinite_steps must be a whole number >= 1, got {max_steps!r}",
                where=where,
                fix="set fit.max_nonfinite_steps: 20 (the default)",
            )
        self.max_steps = max_steps
        self.where = where
        self._run: torch.Tensor | None = None  # consecutive non-finite steps so far, on the loss's device
        self._batches = 0

    @classmethod
    def from_fit(cls, fit_cfg: dict[str, Any], where: str | None = None) -> NonFiniteLoss:
        """From the config's ``fit`` section (``max_nonfinite_steps``, default 20)."""
        return cls(fit_cfg.get("max_nonfinite_steps", DEFAULT_MAX_NONFINITE_STEPS), where)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor):
            return
        bad = ~torch.isfinite(loss.detach()).all()
        self._run = bad.long() if self._run is None else (self._run + 1) * bad
        self._batches += 1
        if self._batches % self.max_steps:
            return
        # every process decides at the same batch, so under DDP none is left waiting in an all-reduce
        if trainer.strategy.reduce_boolean_decision(int(self._run) >= self.max_steps, all=False):
            raise SeqpipeError(
                f"the training loss was NaN/inf for {int(self._run)} consecutive steps (up to step "
                f"{trainer.global_step}): training diverged or its data holds non-finite values; nothing is "
                "published",
                where=self.where,
                fix="check the data (`seqpipe verify`, the preprocess log) and lower model.init_args.lr "
                "(fit.max_nonfinite_steps sets how many such steps stop a fit)",
            )
