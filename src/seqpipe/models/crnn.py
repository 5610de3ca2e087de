"""CRNN: convolutions find local patterns, a recurrent core reads them in order.

- Feature frames (B, T, F), e.g. log-mel spectrograms: Conv2d blocks over (frequency, time)
  -> per-frame vectors (channels x remaining frequency bins) -> recurrent core.
- Token ids (B, T), e.g. DNA bases: one-hot (or embedding) -> Conv1d blocks over time, DanQ-style
  (conv, max-pool, dropout) -> (Bi)LSTM/GRU core.

Each conv block is conv -> batch norm -> ReLU -> max-pool. Pooling shrinks time by the product of
the time pool sizes; sample lengths shrink with it so padded frames never reach time pooling.
The core, pooling, head, steps, losses and optimizers are RecurrentModel's (``build_on_front``):
only the front end differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from seqpipe.data.spec import DataSpec
from seqpipe.errors import SeqpipeError
from seqpipe.models.core import fixed_length
from seqpipe.models.recurrent import RecurrentModel

# where the CRNN's defaults differ from RecurrentModel's (a small GRU, dropout, mean over time)
CRNN_DEFAULTS: dict[str, Any] = dict(
    cell="gru", hidden_size=128, num_layers=1, dropout=0.2, pooling="mean", warmup_steps=50
)


class ConvFrontEnd(nn.Module):
    """Conv blocks for feature frames (2-D over freq x time) or tokens (1-D over time)."""

    def __init__(
        self,
        spec: DataSpec,
        channels: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        time_pool: Sequence[int] | int = 2,
        freq_pool: Sequence[int] | int = 2,
        dropout: float = 0.1,
        embedding_dim: int | None = None,
    ):
        super().__init__()
        n = len(channels)
        tp = [time_pool] * n if isinstance(time_pool, int) else list(time_pool)
        fp = [freq_pool] * n if isinstance(freq_pool, int) else list(freq_pool)
        if len(tp) != n or len(fp) != n:
            raise SeqpipeError("time_pool/freq_pool need one entry a conv block", where="model.time_pool")
        self.time_stride = int(torch.tensor(tp).prod())
        self.time_pools = tp
        self.kernel_size = kernel_size
        self.two_d = spec.input == "features"
        pad = kernel_size // 2
        blocks: list[nn.Module] = []
        if self.two_d:
            c_in, f = 1, spec.feature_dim
            for c, t_p, f_p in zip(channels, tp, fp, strict=True):
                blocks += [
                    nn.Conv2d(c_in, c, kernel_size, padding=pad),
                    nn.BatchNorm2d(c),
                    nn.ReLU(),
                    nn.MaxPool2d((f_p, t_p), ceil_mode=False),
                    nn.Dropout(dropout),
                ]
                c_in, f = c, f // f_p
            if f < 1:
                raise SeqpipeError(
                    f"freq_pool {fp} leaves no frequency bins of {spec.feature_dim}", where="model.freq_pool"
                )
            self.out_dim = c_in * f
            self.embed = None
        else:
            self.embed = nn.Embedding(spec.vocab_size, embedding_dim) if embedding_dim else None
            c_in = embedding_dim or spec.vocab_size
            self.vocab = spec.vocab_size
            for c, t_p in zip(channels, tp, strict=True):
                blocks += [
                    nn.Conv1d(c_in, c, kernel_size, padding=pad),
                    nn.BatchNorm1d(c),
                    nn.ReLU(),
                    nn.MaxPool1d(t_p),
                    nn.Dropout(dropout),
                ]
                c_in = c
            self.out_dim = c_in
        self.blocks = nn.Sequential(*blocks)

    def out_steps(self, steps: int) -> int:
        """Time steps left after the conv blocks for an input of ``steps`` (convs keep 'same' length for an
        odd kernel, grow it by one for an even one; each max-pool floors)."""
        pad = self.kernel_size // 2
        for p in self.time_pools:
            steps = (steps + 2 * pad - self.kernel_size + 1) // p
        return steps

    def out_lengths(self, lengths: torch.Tensor | None) -> torch.Tensor | None:
        return None if lengths is None else (lengths // self.time_stride).clamp_min(1)

    def run_blocks(self, h: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """The conv blocks, zeroing each sample's padded steps before every conv (time is the last
        dim), so a padded batch gives a sample the same features as the sample alone."""
        if lengths is None:
            return self.blocks(h)
        k = 0
        for m in self.blocks:
            if isinstance(m, (nn.Conv1d, nn.Conv2d)):
                valid = torch.arange(h.shape[-1], device=h.device)[None, :] < lengths.to(h.device)[:, None]
                h = h * valid.view(h.shape[0], *([1] * (h.dim() - 2)), h.shape[-1]).to(h.dtype)
            h = m(h)
            if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)):
                lengths = (lengths // self.time_pools[k]).clamp_min(1)
                k += 1
        return h

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, F) frames or (B, T) ids -> (B, T', D)."""
        if self.two_d:
            h = self.run_blocks(x.transpose(1, 2).unsqueeze(1), lengths)  # (B, C, F', T')
            b, c, f, t = h.shape
            return h.permute(0, 3, 1, 2).reshape(b, t, c * f)
        if self.embed is not None:
            h = self.embed(x).transpose(1, 2)
        else:
            h = nn.functional.one_hot(x.long(), self.vocab).to(torch.get_default_dtype()).transpose(1, 2)
        return self.run_blocks(h, lengths).transpose(1, 2)


class CRNN(RecurrentModel):
    """Conv front end -> RecurrentModel's recurrent core, time pooling and head, built from a DataSpec.

    Every RecurrentModel argument (cell, hidden_size, num_layers, dropout, bidirectional, pooling, loss,
    optimizer, lr, ..., data_info) is accepted as is (``**recurrent``); only these defaults differ:
    ``CRNN_DEFAULTS``. one_hot and proj_dim belong to RecurrentModel's own front end and are refused here.

    Args (the conv front end's):
        conv_channels: output channels of each conv block.
        kernel_size: conv kernel (square for 2-D).
        time_pool, freq_pool: max-pool sizes a block over time and frequency (2-D only).
        conv_dropout: dropout after each conv block.
        embedding_dim: for token input, learn an embedding of this size instead of one-hot.
        **recurrent: RecurrentModel's arguments. pooling: "mean" (the default here: position-free, right for
            motif presence anywhere in a variable-length sequence or clip), "last", "attention", or
            "flatten": the outputs of every pooled step concatenated -> dropout -> dense (DanQ/DeepSplice
            head), so the head knows *where* along the sequence a pattern sits. Use it for fixed-length,
            position-anchored tasks (the splice set: the junction is always at 30|31). It needs one length
            for all data (spec.max_len, checked against data_info["length"]); varying lengths are a
            SeqpipeError at construction, and a batch of another length a SeqpipeError in forward.
    """

    config_kwargs_target = RecurrentModel  # where **recurrent goes: configs are checked against it

    def __init__(
        self,
        spec: dict[str, Any],
        conv_channels: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        time_pool: Sequence[int] | int = 2,
        freq_pool: Sequence[int] | int = 2,
        conv_dropout: float = 0.1,
        embedding_dim: int | None = None,
        **recurrent: Any,
    ):
        spec_obj = DataSpec.from_dict(spec) if isinstance(spec, dict) else spec
        if spec_obj.kind.per_step:
            raise SeqpipeError(
                "CRNN pools over time: it serves class/regression targets",
                where="model.class_path",
                fix="use RecurrentModel for next-token or masked-token tasks",
            )
        for name in ("one_hot", "proj_dim", "ngram_orders"):
            if recurrent.get(name):
                raise SeqpipeError(
                    f"the CRNN's conv front end replaces RecurrentModel's, so '{name}' does not apply",
                    where=f"model.{name}",
                    fix=f"remove {name} (embedding_dim picks a learned embedding over one-hot tokens)",
                )
        # RecurrentModel builds (and draws the initial weights of) its own blocks first; they are replaced
        # below. Kept so a seed gives the same weights as every CRNN trained so far (same draws, same order).
        super().__init__(spec=spec, **{**CRNN_DEFAULTS, **recurrent})
        self.front = ConvFrontEnd(
            self.spec, conv_channels, kernel_size, time_pool, freq_pool, conv_dropout, embedding_dim
        )
        length = fixed_length(self.spec, recurrent.get("data_info"), self.block_args["pooling"])
        steps = None if length is None else self.front.out_steps(length)
        if steps is not None and steps < 1:
            raise SeqpipeError(
                f"pooling 'flatten': the conv front end leaves no steps of {length}",
                where="model.time_pool",
                fix="use smaller time_pool values",
            )
        self.build_on_front(steps)

    def run_front(self, inputs: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Conv blocks, and the sample lengths time pooling leaves (never past the pooled frames)."""
        if inputs.shape[1] < self.front.time_stride:
            raise SeqpipeError(
                f"an input of {inputs.shape[1]} steps is shorter than the CRNN's time pooling "
                f"({self.front.time_stride} steps a pooled step)",
                where="model.time_pool",
                fix="use longer clips/sequences, or smaller time_pool values",
            )
        feats = self.front(inputs, lengths)
        lengths = self.front.out_lengths(lengths)
        if lengths is not None:
            lengths = lengths.clamp_max(feats.shape[1])
        return feats, lengths
