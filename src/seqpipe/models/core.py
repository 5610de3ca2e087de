"""Building blocks every model is composed of: front end -> recurrent core -> head.

Each block is built from the DataSpec, so one model class trains on text tokens, DNA bases,
spectrogram frames or price features without a domain-specific copy. The recurrence itself is
always a fused torch.nn.RNN/LSTM/GRU (cuDNN on GPU).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqpipe.data.spec import DataSpec
from seqpipe.errors import SeqpipeError

Cell = Literal["rnn", "lstm", "gru"]
CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class FrontEnd(nn.Module):
    """Token ids -> embeddings (or one-hot), or feature frames -> optional linear projection."""

    def __init__(self, spec: DataSpec, embedding_dim: int = 64, one_hot: bool = False, proj_dim: int | None = None):
        super().__init__()
        self.kind = spec.input
        if spec.input == "tokens":
            if one_hot:
                self.embed = nn.Embedding(spec.vocab_size, spec.vocab_size)
                self.embed.weight.data = torch.eye(spec.vocab_size)
                self.embed.weight.requires_grad_(False)
                self.out_dim = spec.vocab_size
            else:
                self.embed = nn.Embedding(spec.vocab_size, embedding_dim)
                self.out_dim = embedding_dim
        else:
            self.embed = nn.Linear(spec.feature_dim, proj_dim) if proj_dim else nn.Identity()
            self.out_dim = proj_dim or spec.feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x)


def check_bidirectional(spec: DataSpec, bidirectional: bool) -> None:
    """Refuse a bidirectional core on a task that may not see the future (it would leak)."""
    if bidirectional and spec.causal:
        raise SeqpipeError(
            f"bidirectional=True on a causal task (target='{spec.target}'): the backward "
            "direction would read the future it is asked to predict",
            where="model.bidirectional",
            fix="set model.bidirectional: false, or use a task that may read both sides (e.g. fill-in-the-blank)",
        )


class RecurrentCore(nn.Module):
    """A fused nn.RNN (tanh) / nn.LSTM / nn.GRU, batch first, with packing for ragged batches."""

    def __init__(
        self,
        cell: Cell,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ):
        super().__init__()
        if cell not in CELLS:
            raise SeqpipeError(f"unknown cell '{cell}'", where="model.cell", fix=f"use one of {sorted(CELLS)}")
        kwargs = dict(nonlinearity="tanh") if cell == "rnn" else {}
        self.cell = cell
        self.rnn = CELLS[cell](
            input_size,
            hidden_size,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=bidirectional,
            batch_first=True,
            **kwargs,
        )
        self.directions = 2 if bidirectional else 1
        self.out_dim = hidden_size * self.directions

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None, state: State | None = None
    ) -> tuple[torch.Tensor, State]:
        """Returns outputs (B, T, H*dirs), zero at padded steps, and the final state."""
        if lengths is not None and bool((lengths < x.shape[1]).any()):
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, state = self.rnn(packed, state)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
            return out, state
        return self.rnn(x, state)

    def last_hidden(self, state: State) -> torch.Tensor:
        """Top layer's final hidden state, both directions concatenated: (B, H*dirs)."""
        h = state[0] if isinstance(state, tuple) else state
        return torch.cat([h[-d] for d in range(self.directions, 0, -1)], dim=-1)


def detach_state(state: State | None) -> State | None:
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


POOLINGS = ("last", "mean", "attention", "flatten")


class TimePooling(nn.Module):
    """Sequence outputs -> one vector a sample: last valid state, masked mean, attention, or flatten.

    "flatten" concatenates the outputs of every step (B, T, D) -> (B, T*D), DanQ/DeepSplice style, so the
    head sees *where* a feature fires, not only whether it does: right for fixed-length, position-anchored
    tasks (splice junctions at a known offset). It needs ``steps``, the fixed number of steps; a batch
    with another length, or with shorter (padded) samples, is refused. ``out_dim`` is the pooled size.
    """

    def __init__(
        self, dim: int, mode: Literal["last", "mean", "attention", "flatten"] = "last", steps: int | None = None
    ):
        super().__init__()
        if mode not in POOLINGS:
            raise SeqpipeError(
                f"unknown pooling '{mode}'", where="model.pooling", fix=f"use one of {', '.join(POOLINGS)}"
            )
        if mode == "flatten" and not steps:
            raise SeqpipeError(
                "pooling 'flatten' needs a fixed sequence length, and the data gives none",
                where="model.pooling",
                fix="use pooling: mean or attention for variable-length data",
            )
        self.mode = mode
        self.steps = steps if mode == "flatten" else None
        self.out_dim = dim * steps if mode == "flatten" else dim
        self.score = nn.Linear(dim, 1) if mode == "attention" else None

    def forward(self, out: torch.Tensor, lengths: torch.Tensor | None, last: torch.Tensor) -> torch.Tensor:
        if self.mode == "last":
            return last
        b, t, _ = out.shape
        if self.mode == "flatten":
            if t != self.steps or (lengths is not None and bool((lengths != self.steps).any())):
                got = t if lengths is None else sorted({int(n) for n in lengths.tolist()})
                raise SeqpipeError(
                    f"pooling 'flatten' was built for exactly {self.steps} steps after the front end, and got {got}",
                    where="model.pooling",
                    fix="give every sequence the training length (trim or pad them upstream), "
                    "or train with pooling: mean or attention",
                )
            return out.reshape(b, t * out.shape[2])
        if lengths is None:
            mask = torch.ones(b, t, dtype=torch.bool, device=out.device)
        else:
            mask = torch.arange(t, device=out.device)[None, :] < lengths.to(out.device)[:, None]
        if self.mode == "mean":
            m = mask.unsqueeze(-1).to(out.dtype)
            return (out * m).sum(1) / m.sum(1).clamp_min(1)
        scores = self.score(out).squeeze(-1).masked_fill(~mask, float("-inf"))
        return (torch.softmax(scores, dim=1).unsqueeze(-1) * out).sum(1)


def fixed_length(spec: DataSpec, data_info: dict | None, pooling: str) -> int | None:
    """The one input length every sample has, for pooling 'flatten' (None for other poolings).

    Refused with a SeqpipeError naming the fix when the data's lengths vary (data_info["length"]
    records min/max for prepared DNA stores) or the spec bounds no length at all."""
    if pooling != "flatten":
        return None
    span = (data_info or {}).get("length") or {}
    if span and span.get("min") != span.get("max"):
        raise SeqpipeError(
            f"pooling 'flatten' needs every sequence the same length; this data's lengths run "
            f"from {span.get('min')} to {span.get('max')}",
            where="model.pooling",
            fix="use pooling: mean or attention, or trim/filter the data to one length",
        )
    if not spec.max_len:
        raise SeqpipeError(
            "pooling 'flatten' needs a fixed sequence length, and the data spec bounds none",
            where="model.pooling",
            fix="use pooling: mean or attention for variable-length data",
        )
    return int(spec.max_len)


def make_head(spec: DataSpec, in_dim: int) -> nn.Module:
    """Output layer for the spec's target kind."""
    return nn.Linear(in_dim, getattr(spec, spec.kind.head))


class OutputOnly(nn.Module):
    """Wraps a seqpipe model so forward(inputs) returns only the prediction tensor (for MLflow serving)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs)[0]


def logging_step(module: Any) -> bool:
    """Whether Lightning passes this training step's logged values on (every trainer.log_every_n_steps).

    Each self.log call costs ~0.5 ms of Python, a few percent of a small recurrent model's CPU step
    (benchmarks/text.md), and Lightning drops the values of the other steps anyway; outside a Trainer, always.
    """
    trainer = module._trainer
    connector = getattr(trainer, "_logger_connector", None)
    return connector is None or bool(connector.should_update_logs)
