"""Seq2Seq: an encoder summarizes the input, a decoder RNN started from that summary emits the output.

    encoder   front end (embedding / linear, or the CRNN's ConvFrontEnd for spectrograms) -> fused
              RecurrentCore (RNN/LSTM/GRU, optionally bidirectional where the task allows it)
    context   the encoder's final state (the blog's context vector C) becomes the decoder's initial
              state (both directions joined by a linear bridge when the encoder is bidirectional)
    decoder   the same cell, one step at a time: input = the previous output (embedded token, or the
              previous value for numeric outputs), optional attention over all encoder states:
                luong     score(h_t, m_s) = h_t^T W m_s, after the RNN step; the attentional vector
                          tanh(W_c [c_t; h_t]) predicts y_t and is fed to the next step's input
                bahdanau  score(h_{t-1}, m_s) = v^T tanh(W_q h_{t-1} + W_k m_s), before the step; the
                          context joins the RNN input and the output layer
Targets. ``spec.target="sequence"``: token ids with PAD=0, BOS=1, EOS=2 (``num_classes`` ids in
all), variable length, each target ending in EOS. ``spec.target="regression"``: ``output_dim``
numbers decoded one step at a time (H-step forecasting).

Training uses teacher forcing with scheduled sampling (Bengio et al. 2015): at each decoder step
each sample is fed the true previous output with probability ``p`` and the model's own previous
prediction otherwise; ``p`` decays from ``teacher_forcing`` to ``min_teacher_forcing`` over
``decay_steps`` optimizer steps (linear, exponential or inverse-sigmoid; "none" keeps it fixed).
Decoding is greedy or beam search (``beam_width``; width 1 is exactly greedy).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch import nn

from seqpipe.data.spec import BOS, EOS, PAD, DataSpec
from seqpipe.errors import SeqpipeError
from seqpipe.models import decoding, teacher_forcing
from seqpipe.models.attention import Attention
from seqpipe.models.core import Cell, FrontEnd, RecurrentCore, State, check_bidirectional
from seqpipe.models.crnn import ConvFrontEnd
from seqpipe.models.optim import configure_optimizer
from seqpipe.models.scheduled_sampling import DECAYS, step_generator, teacher_forcing_ratio

ATTENTION = ("none", "luong", "bahdanau")


class Seq2Seq(L.LightningModule):
    """Encoder-decoder for token sequences (transcription) and multi-step numeric outputs (forecasts).

    Args:
        spec: the datamodule's DataSpec (target "sequence" or "regression").
        encoder: "recurrent" (FrontEnd -> core) or "conv" (the CRNN's ConvFrontEnd -> core).
        cell, hidden_size, num_layers, dropout, bidirectional: encoder core; the decoder is the same
            cell with ``hidden_size`` units and ``num_layers`` layers.
        embedding_dim: input token embedding (token inputs) and decoder output-token embedding.
        proj_dim: optional linear projection of feature frames (recurrent encoder).
        conv_channels, kernel_size, time_pool, freq_pool, conv_dropout: the conv encoder's blocks.
        attention: "none", "luong" or "bahdanau"; attn_dim: Bahdanau's hidden size.
        teacher_forcing, min_teacher_forcing, sampling_decay, decay_steps: scheduled sampling.
        max_decode_len: longest token output when decoding (EOS excluded).
        beam_width: beam search width used by ``decode`` (1 = greedy); length_penalty: final beam
            scores are divided by length ** length_penalty.
        loss: "l1" or "mse" for numeric outputs.
        optimizer, lr, weight_decay, lr_schedule, warmup_steps: as RecurrentModel.
        data_info: dataset facts kept in the checkpoint.
    """

    def __init__(
        self,
        spec: dict[str, Any],
        encoder: str = "recurrent",
        cell: Cell = "gru",
        hidden_size: int = 128,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        embedding_dim: int = 32,
        proj_dim: int | None = None,
        conv_channels: Sequence[int] = (16, 32),
        kernel_size: int = 3,
        time_pool: Sequence[int] | int = 2,
        freq_pool: Sequence[int] | int = 2,
        conv_dropout: float = 0.1,
        attention: str = "luong",
        attn_dim: int = 64,
        teacher_forcing: float = 1.0,
        min_teacher_forcing: float = 0.5,
        sampling_decay: str = "linear",
        decay_steps: int = 1000,
        max_decode_len: int = 16,
        beam_width: int = 4,
        length_penalty: float = 0.0,
        loss: str = "l1",
        optimizer: str = "adamw",
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        lr_schedule: str = "cosine",
        warmup_steps: int = 50,
        data_info: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.spec = spec = DataSpec.from_dict(spec) if isinstance(spec, dict) else spec
        check_bidirectional(spec, bidirectional)
        if spec.target not in ("sequence", "regression"):
            raise SeqpipeError(
                f"Seq2Seq decodes 'sequence' or 'regression' targets, not '{spec.target}'",
                where="model.class_path",
                fix="use RecurrentModel for this task",
            )
        if attention not in ATTENTION:
            raise SeqpipeError(
                f"unknown attention '{attention}'", where="model.attention", fix=f"use one of {ATTENTION}"
            )
        if sampling_decay not in DECAYS:
            raise SeqpipeError(
                f"unknown sampling decay '{sampling_decay}'", where="model.sampling_decay", fix=f"use one of {DECAYS}"
            )
        if not 0.0 <= min_teacher_forcing <= teacher_forcing <= 1.0:
            raise SeqpipeError(
                f"need 0 <= min_teacher_forcing ({min_teacher_forcing}) <= teacher_forcing ({teacher_forcing}) <= 1",
                where="model.teacher_forcing",
            )
        if beam_width < 1:
            raise SeqpipeError(f"beam_width must be >= 1, got {beam_width}", where="model.beam_width")
        if loss not in ("l1", "mse"):
            raise SeqpipeError(f"unknown loss '{loss}'", where="model.loss", fix="use l1 or mse")
        self.tokens_out = spec.target == "sequence"
        if self.tokens_out and spec.num_classes <= EOS + 1:
            raise SeqpipeError(f"num_classes {spec.num_classes} leaves no room beside PAD/BOS/EOS", where="spec")
        # encoder
        if encoder == "conv":
            self.enc_front = ConvFrontEnd(
                spec,
                conv_channels,
                kernel_size,
                time_pool,
                freq_pool,
                conv_dropout,
                embedding_dim if spec.input == "tokens" else None,
            )
        elif encoder == "recurrent":
            self.enc_front = FrontEnd(spec, embedding_dim=embedding_dim, proj_dim=proj_dim)
        else:
            raise SeqpipeError(f"unknown encoder '{encoder}'", where="model.encoder", fix="use recurrent or conv")
        self.encoder = RecurrentCore(cell, self.enc_front.out_dim, hidden_size, num_layers, dropout, bidirectional)
        mem_dim = self.encoder.out_dim
        self.bridge = nn.Linear(mem_dim, hidden_size) if bidirectional else None
        # decoder
        self.out_dim = spec.num_classes if self.tokens_out else 1
        self.dec_embed = (
            nn.Embedding(spec.num_classes, embedding_dim) if self.tokens_out else nn.Linear(1, embedding_dim)
        )
        self.start = None if self.tokens_out else nn.Parameter(torch.zeros(embedding_dim))
        self.attn = Attention(attention, hidden_size, mem_dim, attn_dim) if attention != "none" else None
        dec_in = embedding_dim + (mem_dim if attention == "bahdanau" else hidden_size if attention == "luong" else 0)
        self.decoder = RecurrentCore(cell, dec_in, hidden_size, num_layers, dropout, False)
        self.combine = nn.Linear(mem_dim + hidden_size, hidden_size) if attention == "luong" else None
        feat = hidden_size + (mem_dim if attention == "bahdanau" else 0)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(feat, self.out_dim)

    # -- encoder ------------------------------------------------------------------------------
    def encode(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> dict[str, Any]:
        """-> memory (B, S, M), mask (B, S), the decoder's initial state, precomputed attention keys."""
        if lengths is not None and inputs.dim() == 3:  # padded frames are zeros, whatever the batch held
            valid = torch.arange(inputs.shape[1], device=inputs.device)[None, :] < lengths.to(inputs.device)[:, None]
            inputs = inputs * valid.unsqueeze(-1).to(inputs.dtype)
        x = self.enc_front(inputs)
        if isinstance(self.enc_front, ConvFrontEnd):
            lengths = self.enc_front.out_lengths(lengths)
            if lengths is not None:
                lengths = lengths.clamp_max(x.shape[1])
        memory, state = self.encoder(x, lengths)
        s = memory.shape[1]
        mask = (
            torch.arange(s, device=memory.device)[None, :] < lengths.to(memory.device)[:, None]
            if lengths is not None
            else torch.ones(memory.shape[:2], dtype=torch.bool, device=memory.device)
        )
        return {
            "memory": memory,
            "mask": mask,
            "state": self._bridge(state),
            "keys": self.attn.keys(memory) if self.attn is not None else None,
        }

    def _bridge(self, state: State) -> State:
        """(layers*dirs, B, H) encoder state -> (layers, B, H) decoder state (the context vector C)."""
        if self.bridge is None:
            return state

        def join(h: torch.Tensor) -> torch.Tensor:
            layers = h.shape[0] // 2
            h = h.view(layers, 2, *h.shape[1:])
            return torch.tanh(self.bridge(torch.cat([h[:, 0], h[:, 1]], dim=-1)))

        return tuple(join(s) for s in state) if isinstance(state, tuple) else join(state)

    # -- one decoder step ---------------------------------------------------------------------
    def init_feed(self, enc: dict[str, Any]) -> torch.Tensor | None:
        b = enc["memory"].shape[0]
        return enc["memory"].new_zeros(b, self.hparams.hidden_size) if self.hparams.attention == "luong" else None

    def embed_prev(self, prev: torch.Tensor | None, batch: int, device: torch.device) -> torch.Tensor:
        """Embedding of the previous output: token ids (B,) or values (B,); None = the start of decoding."""
        if self.tokens_out:
            if prev is None:
                prev = torch.full((batch,), BOS, dtype=torch.long, device=device)
            return self.dec_embed(prev)
        if prev is None:
            return self.start.expand(batch, -1)
        return self.dec_embed(prev.unsqueeze(-1).to(self.start.dtype))

    def step(
        self, emb: torch.Tensor, state: State, feed: torch.Tensor | None, enc: dict[str, Any]
    ) -> tuple[torch.Tensor, State, torch.Tensor | None, torch.Tensor | None]:
        """One decoder step -> (output (B, out_dim), new state, next feed, attention weights)."""
        kind = self.hparams.attention
        weights = None
        if kind == "bahdanau":
            h = state[0] if isinstance(state, tuple) else state
            ctx, weights = self.attn(h[-1], enc["memory"], enc["keys"], enc["mask"])
            x = torch.cat([emb, ctx], dim=-1)
        elif kind == "luong":
            x = torch.cat([emb, feed], dim=-1)
        else:
            x = emb
        out, state = self.decoder(x.unsqueeze(1), state=state)
        h_t = out[:, 0]
        if kind == "luong":
            ctx, weights = self.attn(h_t, enc["memory"], enc["keys"], enc["mask"])
            feat = torch.tanh(self.combine(torch.cat([ctx, h_t], dim=-1)))
            feed = feat
        elif kind == "bahdanau":
            feat = torch.cat([h_t, ctx], dim=-1)
        else:
            feat = h_t
        return self.out(self.drop(feat)), state, feed, weights

    # -- training: teacher forcing with scheduled sampling -------------------------------------
    def tf_ratio(self) -> float:
        hp = self.hparams
        step = self.trainer.global_step if self._trainer is not None else 0
        return teacher_forcing_ratio(
            step, hp.teacher_forcing, hp.min_teacher_forcing, hp.sampling_decay, hp.decay_steps
        )

    # -- teacher forcing: functions of the model in seqpipe.models.teacher_forcing, bound here as its methods --
    teacher_forced = teacher_forcing.teacher_forced  # outputs under teacher forcing with scheduled sampling
    loss_and_metrics = teacher_forcing.loss_and_metrics  # the loss and the metric a step logs
    _eval_step = teacher_forcing.eval_step  # validation/test: teacher-forced loss and free-running error

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        ratio = self.tf_ratio()
        outputs = self.teacher_forced(
            batch["inputs"], batch["targets"], batch.get("lengths"), ratio, step_generator(self.global_step)
        )
        loss, metrics = self.loss_and_metrics(outputs, batch["targets"])
        bs = batch["inputs"].shape[0]
        self.log("train_loss", loss, prog_bar=True, batch_size=bs)
        self.log("teacher_forcing", ratio, batch_size=bs)
        for k, v in metrics.items():
            self.log(f"train_{k}", v, batch_size=bs)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def configure_optimizers(self) -> Any:
        return configure_optimizer(self, self.hparams)

    # -- inference: functions of the model in seqpipe.models.decoding, bound here as its methods ----------
    forecast = decoding.forecast  # m.forecast(inputs, lengths): numeric outputs from its own predictions
    greedy = decoding.greedy  # m.greedy(inputs, lengths, max_len): greedy token decoding
    beam_search = decoding.beam_search  # m.beam_search(inputs, lengths, beam_width, max_len, length_penalty)

    def decode(
        self, inputs: torch.Tensor, lengths: torch.Tensor | None = None, beam_width: int | None = None
    ) -> list[list[int]]:
        k = beam_width or self.hparams.beam_width
        return self.greedy(inputs, lengths) if k == 1 else self.beam_search(inputs, lengths, k)

    def forward(
        self, inputs: torch.Tensor, lengths: torch.Tensor | None = None, state: Any = None
    ) -> tuple[torch.Tensor, None]:
        """Forecasts (B, output_dim), or decoded token ids padded with PAD (B, max_decode_len)."""
        if not self.tokens_out:
            return self.forecast(inputs, lengths), None
        hyps = self.decode(inputs, lengths)
        out = torch.full((len(hyps), self.hparams.max_decode_len), PAD, dtype=torch.long)
        for i, h in enumerate(hyps):
            out[i, : len(h)] = torch.tensor(h, dtype=torch.long)
        return out, None
