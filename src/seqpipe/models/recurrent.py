"""RecurrentModel: vanilla RNN (tanh), LSTM or GRU for any DataSpec, as one LightningModule.

The three architectures differ only in the fused torch.nn cell, so they share this file rather
than three near-copies; ``cell`` picks one. Read top to bottom: build from the spec, forward,
loss per target kind, the training/eval steps, optimizers.

Next-token language modeling trains with teacher forcing and backpropagation through time over
each window; with ``tbptt=True`` the hidden state is carried (detached) across consecutive
windows of a long stream (the datamodule then serves windows in stream order).
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.plugins.precision import Precision
from lightning.pytorch.utilities import GradClipAlgorithmType
from torch import nn

from seqpipe.data.spec import DataSpec
from seqpipe.errors import SeqpipeError
from seqpipe.models.core import (
    Cell,
    FrontEnd,
    RecurrentCore,
    State,
    TimePooling,
    check_bidirectional,
    detach_state,
    fixed_length,
    logging_step,
    make_head,
)
from seqpipe.models.ngram_embedding import HashedNgrams
from seqpipe.models.optim import configure_optimizer


class RecurrentModel(L.LightningModule):
    """A recurrent sequence model built from a DataSpec.

    Args:
        spec: the datamodule's DataSpec (as a dict, so it is saved in the checkpoint).
        cell: "rnn" (h_t = tanh(W_h h_{t-1} + W_x x_t)), "lstm" or "gru".
        hidden_size, num_layers, dropout: the recurrent core.
        embedding_dim: token embedding size (token inputs); ignored with one_hot.
        one_hot: feed one-hot tokens instead of a learned embedding (DNA bases, the blog's setup).
        proj_dim: optional linear projection of feature frames before the core.
        bidirectional: read both directions; refused on causal tasks (next token, forecasting).
        pooling: how a sequence becomes one vector for class/regression targets: "last", "mean",
            "attention", or "flatten" (all steps' outputs concatenated; fixed-length data only, see
            core.TimePooling).
        loss: "mse" or "l1" for regression targets.
        optimizer: "adamw", "adam" or "rmsprop" (the blog's).
        lr, weight_decay: optimizer settings.
        fused_optimizer: AdamW/Adam as one fused kernel a step (torch's ``fused=True``). On one CPU core it
            updates the 3.1 M parameters of the n-gram tables in ~4 ms instead of ~23 ms (the default loop);
            off by default, so results trained before it existed rerun bit for bit.
        lr_schedule: "cosine" (linear warmup then cosine to 10% over the run's optimizer steps, from
            trainer.max_steps or max_epochs; never from wall clock), "plateau" or "none".
        warmup_steps: linear warmup length for "cosine".
        input_skip: per-step targets: the head reads each step's input features (embedding, n-grams) beside
            the core's output, a skip connection past the recurrence (Graves 2013's input-to-output skip).
        ngram_orders: hashed n-gram embeddings of these orders added to the token embedding (token inputs;
            see ngram_embedding.py): the exact recent context as an input, the memory a counting model has.
            The state then carries the last max(orders)-1 token ids beside the hidden state.
        ngram_buckets, ngram_dim: rows and width of each order's table.
        ngram_dropout: probability of dropping an order's row at a training step (keeps the tables from
            memorizing the training text).
        label_smoothing: for class targets, the training loss's label smoothing (0 = plain cross-entropy);
            val/test losses stay plain cross-entropy, so early stopping compares like with like.
        tbptt: carry the hidden state across consecutive training batches (truncated BPTT).
        data_info: dataset facts kept in the checkpoint (vocabulary, class names, scaling).
    """

    def __init__(
        self,
        spec: dict[str, Any],
        cell: Cell = "lstm",
        hidden_size: int = 256,
        num_layers: int = 2,
        dropout: float = 0.0,
        embedding_dim: int = 64,
        one_hot: bool = False,
        proj_dim: int | None = None,
        bidirectional: bool = False,
        pooling: str = "last",
        loss: str = "mse",
        optimizer: str = "adamw",
        lr: float = 2e-3,
        weight_decay: float = 0.01,
        lr_schedule: str = "cosine",
        warmup_steps: int = 100,
        tbptt: bool = False,
        label_smoothing: float = 0.0,
        input_skip: bool = False,
        ngram_orders: list[int] | None = None,
        ngram_buckets: int = 16384,
        ngram_dim: int = 32,
        ngram_dropout: float = 0.5,
        fused_optimizer: bool = False,
        data_info: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.spec = spec = DataSpec.from_dict(spec) if isinstance(spec, dict) else spec
        check_bidirectional(spec, bidirectional)
        if tbptt and spec.target != "next_token":
            raise SeqpipeError("tbptt only applies to next-token streams", where="model.tbptt", fix="set tbptt: false")
        if loss not in ("mse", "l1"):
            raise SeqpipeError(f"unknown loss '{loss}'", where="model.loss", fix="use mse or l1")
        if input_skip and not spec.kind.per_step:
            raise SeqpipeError(
                f"input_skip needs a per-step target, and this data's is '{spec.target}'",
                where="model.input_skip",
                fix="remove input_skip",
            )
        self.front = FrontEnd(spec, embedding_dim=embedding_dim, one_hot=one_hot, proj_dim=proj_dim)
        self.block_args = dict(
            cell=cell,
            hidden_size=hidden_size,
            num_layers=num_layers,
            dropout=dropout,
            bidirectional=bidirectional,
            pooling=pooling,
            input_skip=input_skip,
        )
        self.build_on_front(fixed_length(spec, data_info, pooling))
        self.ngrams = None
        if ngram_orders:
            if spec.input != "tokens":
                raise SeqpipeError(
                    f"ngram_orders needs token inputs, and this data gives {spec.input}",
                    where="model.ngram_orders",
                    fix="remove ngram_orders",
                )
            self.ngrams = HashedNgrams(
                spec.vocab_size, self.front.out_dim, ngram_orders, ngram_buckets, ngram_dim, ngram_dropout
            )
        self._carried: State | None = None

    def build_on_front(self, steps: int | None) -> None:
        """Recurrent core -> time pooling -> dropout -> head on top of ``self.front``, from ``self.block_args``.

        A model with another front end (the CRNN) sets ``self.front`` and calls this again, so every
        core, pooling and head option of this class reaches it without a copy. ``steps``: the fixed
        number of steps after the front end (pooling 'flatten' only)."""
        b = self.block_args
        self.core = RecurrentCore(
            b["cell"], self.front.out_dim, b["hidden_size"], b["num_layers"], b["dropout"], b["bidirectional"]
        )
        self.pool = None if self.spec.kind.per_step else TimePooling(self.core.out_dim, b["pooling"], steps)
        self.drop = nn.Dropout(b["dropout"])
        skip = self.front.out_dim if b.get("input_skip") else 0  # the head also reads each step's input
        self.head = make_head(self.spec, self.core.out_dim + skip if self.pool is None else self.pool.out_dim)

    # -- forward ------------------------------------------------------------------------------
    def forward(
        self, inputs: torch.Tensor, lengths: torch.Tensor | None = None, state: State | None = None
    ) -> tuple[torch.Tensor, State]:
        """Per-step logits (B, T, V) for per-step targets, else one output a sample (B, C).

        With n-gram embeddings the state is the core's state with the token history appended:
        (h, history), or (h, c, history) for the LSTM."""
        feats, lengths = self.run_front(inputs, lengths)
        if self.ngrams is not None:
            history = None
            if state is not None:
                *core_state, history = state
                state = tuple(core_state) if len(core_state) > 1 else core_state[0]
            feats = self.add_ngrams(feats, inputs, history)
            out, state = self.core(feats, lengths, state)
            history = self.ngrams.next_history(history, inputs)
            state = (*state, history) if isinstance(state, tuple) else (state, history)
        else:
            out, state = self.core(feats, lengths, state)
        if self.pool is None:
            return self.head(self.drop(self.head_input(out, feats))), state
        pooled = self.pool(out, lengths, self.core.last_hidden(state))
        return self.head(self.drop(pooled)), state

    def add_ngrams(
        self, feats: torch.Tensor, inputs: torch.Tensor, history: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The core's input: the front end's features plus, with n-gram tables, the hashed n-gram features.

        One place for it, so the gradient replay (callbacks.hidden_gradient_norms) feeds the core what training does."""
        return feats if self.ngrams is None else feats + self.ngrams(inputs, history)

    def head_input(self, out: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        """What a per-step head reads: the core's output and, with ``input_skip``, the step's input features."""
        return torch.cat([out, feats.to(out.dtype)], dim=-1) if self.block_args["input_skip"] else out

    def run_front(self, inputs: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The front end's frames and the sample lengths left after it (a pooling front end shortens them)."""
        return self.front(inputs), lengths

    def loss_and_metrics(
        self, output: torch.Tensor, targets: torch.Tensor, smoothing: float = 0.0
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        kind = self.spec.kind
        if not kind.recurrent:
            raise SeqpipeError(
                f"RecurrentModel cannot train target '{self.spec.target}'",
                fix="use the seq2seq model for sequence targets",
            )
        if kind.per_step:
            loss = F.cross_entropy(output.reshape(-1, output.shape[-1]), targets.reshape(-1), ignore_index=-100)
            return loss, {"bpc": loss / math.log(2)}
        if kind.loss == "cross_entropy":
            loss = F.cross_entropy(output, targets, label_smoothing=smoothing)
            return loss, {"acc": (output.argmax(-1) == targets).float().mean()}
        targets = targets.to(output.dtype).reshape(output.shape)
        loss = F.mse_loss(output, targets) if self.hparams.loss == "mse" else F.l1_loss(output, targets)
        return loss, {"mae": (output - targets).abs().mean()}

    # -- steps --------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        state = None
        if self.hparams.tbptt and self._carried is not None:
            h = self._carried[0] if isinstance(self._carried, tuple) else self._carried
            state = self._carried if h.shape[1] == batch["inputs"].shape[0] else None
        output, new_state = self(batch["inputs"], batch.get("lengths"), state)
        if self.hparams.tbptt:
            self._carried = detach_state(new_state)
        loss, metrics = self.loss_and_metrics(output, batch["targets"], self.hparams.get("label_smoothing", 0.0))
        if logging_step(self):
            bs = batch["inputs"].shape[0]
            self.log("train_loss", loss, prog_bar=True, batch_size=bs)
            for k, v in metrics.items():
                self.log(f"train_{k}", v, prog_bar=k == "bpc", batch_size=bs)
        return loss

    def on_train_epoch_start(self) -> None:
        if not self.trainer.fit_loop.epoch_loop.restarting:  # a run resumed mid-epoch keeps its carried state
            self._carried = None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self._carried is not None:  # the TBPTT state, so a resumed run continues the same streams
            checkpoint["seqpipe_carried_state"] = self._carried

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._carried = checkpoint.get("seqpipe_carried_state")

    def _eval_step(self, batch: dict[str, torch.Tensor], prefix: str) -> None:
        output, _ = self(batch["inputs"], batch.get("lengths"))
        loss, metrics = self.loss_and_metrics(output, batch["targets"])
        bs = batch["inputs"].shape[0]
        self.log(f"{prefix}_loss", loss, prog_bar=True, sync_dist=True, batch_size=bs)
        for k, v in metrics.items():
            self.log(f"{prefix}_{k}", v, prog_bar=True, sync_dist=True, batch_size=bs)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    # -- optimization -------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        return configure_optimizer(self, self.hparams)

    def configure_gradient_clipping(
        self, optimizer: Any, gradient_clip_val: float | None = None, gradient_clip_algorithm: str | None = None
    ) -> None:
        """Lightning's clipping, which its mixed-precision plugin refuses for any fused optimizer (fused
        kernels may unscale 16-bit gradients themselves); bf16 has no scaler, so clip as in 32-bit."""
        if not (self.hparams.get("fused_optimizer") and gradient_clip_val):
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)
            return
        plugin = self.trainer.precision_plugin
        if getattr(plugin, "scaler", None) is not None:
            raise SeqpipeError(
                "fused_optimizer with gradient clipping under 16-mixed: its gradients are scaled",
                where="model.fused_optimizer",
                fix="train in bf16-mixed or 32-bit, or remove fused_optimizer",
            )
        Precision.clip_gradients(
            plugin, optimizer, gradient_clip_val, GradClipAlgorithmType(gradient_clip_algorithm or "norm")
        )
