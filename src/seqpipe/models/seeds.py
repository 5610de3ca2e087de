"""SeedGroup: several RecurrentModels with different initialization seeds, trained side by side.

Where results are noisy (daily returns, volatility), one training run says little: two seeds of
the same LSTM can differ more than two architectures do. SeedGroup trains ``n_seeds`` independent
copies of one RecurrentModel configuration in one process (one Lightning run, one checkpoint), so
the evaluation can report the mean and spread over seeds without paying process start-up and
logging per seed.

The members share nothing but the batches: parameters are disjoint, the loss is the sum of the
members' losses (so each member's gradient is exactly its own), AdamW state is per parameter, and
gradient clipping is applied per member. What they do share: the batch order (seeds differ in
initialization only) and the checkpoint choice (the epoch with the lowest *mean* val loss).
``forward`` returns the members' mean (the seed ensemble); ``member_outputs`` returns each one.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn

from seqpipe.data.spec import DataSpec
from seqpipe.errors import SeqpipeError
from seqpipe.models.optim import configure_optimizer
from seqpipe.models.recurrent import RecurrentModel


class SeedGroup(L.LightningModule):
    """``n_seeds`` RecurrentModels (same hyperparameters, ``model_args``) seeded ``member_seeds``.

    Args:
        spec: the datamodule's DataSpec (dict).
        n_seeds: how many members.
        member_seeds: their initialization seeds (default: the global seed + 0..n_seeds-1).
        data_info: dataset facts kept in the checkpoint.
        **model_args: RecurrentModel arguments (cell, hidden_size, lr, ...), the same for every member.
    """

    config_kwargs_target = RecurrentModel  # where **model_args go: configs are checked against it

    def __init__(
        self,
        spec: dict[str, Any],
        n_seeds: int = 3,
        member_seeds: list[int] | None = None,
        data_info: dict[str, Any] | None = None,
        **model_args: Any,
    ):
        if n_seeds < 1:
            raise SeqpipeError(f"n_seeds must be >= 1, got {n_seeds}", where="model.n_seeds")
        if member_seeds is None:
            first = torch.initial_seed() % (2**31 - 64)
            member_seeds = [int(first) + k for k in range(n_seeds)]
        if len(member_seeds) != n_seeds:
            raise SeqpipeError(f"{len(member_seeds)} member_seeds for n_seeds={n_seeds}", where="model.member_seeds")
        super().__init__()
        self.save_hyperparameters()
        self.hparams["member_seeds"] = list(member_seeds)
        members = []
        for s in member_seeds:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(s)
                members.append(RecurrentModel(spec, **model_args))
        self.members = nn.ModuleList(members)
        self.spec = DataSpec.from_dict(spec) if isinstance(spec, dict) else spec

    def member_outputs(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(n_seeds, B, C): every member's prediction."""
        return torch.stack([m(inputs, lengths)[0] for m in self.members])

    def forward(
        self, inputs: torch.Tensor, lengths: torch.Tensor | None = None, state: Any = None
    ) -> tuple[torch.Tensor, None]:
        return self.member_outputs(inputs, lengths).mean(0), None

    def _losses(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, torch.Tensor]]:
        losses, agg = [], {}
        for m in self.members:
            out, _ = m(batch["inputs"], batch.get("lengths"))
            loss, metrics = m.loss_and_metrics(out, batch["targets"])
            losses.append(loss)
            for k, v in metrics.items():
                agg[k] = agg.get(k, 0) + v / len(self.members)
        return torch.stack(losses), losses, agg

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        stacked, _, metrics = self._losses(batch)
        bs = batch["inputs"].shape[0]
        self.log("train_loss", stacked.mean(), prog_bar=True, batch_size=bs)
        for k, v in metrics.items():
            self.log(f"train_{k}", v, batch_size=bs)
        return stacked.sum()  # disjoint parameters: each member gets exactly its own gradient

    def _eval_step(self, batch: dict[str, torch.Tensor], prefix: str) -> None:
        stacked, _, metrics = self._losses(batch)
        bs = batch["inputs"].shape[0]
        self.log(f"{prefix}_loss", stacked.mean(), prog_bar=True, sync_dist=True, batch_size=bs)
        for i, seed_loss in enumerate(stacked):
            self.log(f"{prefix}_loss_seed{i}", seed_loss, sync_dist=True, batch_size=bs)
        for k, v in metrics.items():
            self.log(f"{prefix}_{k}", v, prog_bar=True, sync_dist=True, batch_size=bs)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def configure_gradient_clipping(
        self, optimizer: Any, gradient_clip_val: float | None = None, gradient_clip_algorithm: str | None = None
    ) -> None:
        """Clip each member on its own, so one member's large gradient never shrinks another's step."""
        if not gradient_clip_val:
            return
        for m in self.members:
            if gradient_clip_algorithm == "value":
                torch.nn.utils.clip_grad_value_(m.parameters(), gradient_clip_val)
            else:
                torch.nn.utils.clip_grad_norm_(m.parameters(), gradient_clip_val)

    def configure_optimizers(self) -> Any:
        return configure_optimizer(self, self.members[0].hparams)
