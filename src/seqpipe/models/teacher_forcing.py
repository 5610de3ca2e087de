"""Training a Seq2Seq with teacher forcing: the decoder reads the true previous output, or (scheduled sampling) its
own, coin flips from a seeded generator; the loss and what a validation or test step logs. Functions of the model,
bound as its methods in seqpipe.models.seq2seq (one idea a file: the model's shape there, its training here).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from seqpipe.data.spec import PAD
from seqpipe.models.decoding import edit_distance, strip


def teacher_forced(
    model: Any,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    lengths: torch.Tensor | None = None,
    ratio: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Outputs (B, T, out_dim) for targets (B, T): step t reads the true y_{t-1} with prob ``ratio``
    (coin flips from ``generator``, a CPU generator)."""
    enc = model.encode(inputs, lengths)
    b, t = targets.shape[:2]
    state, feed, prev = enc["state"], model.init_feed(enc), None
    outs = []
    for i in range(t):
        y, state, feed, _ = model.step(model.embed_prev(prev, b, targets.device), state, feed, enc)
        outs.append(y)
        true = targets[:, i]
        if ratio >= 1.0:
            prev = true
        else:
            own = y.argmax(-1) if model.tokens_out else y[:, 0].detach()
            use_true = (torch.rand(b, generator=generator) < ratio).to(y.device)
            prev = torch.where(use_true, true, own.to(true.dtype))
    return torch.stack(outs, dim=1)


def loss_and_metrics(
    model: Any, outputs: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    if model.tokens_out:
        loss = F.cross_entropy(outputs.reshape(-1, outputs.shape[-1]), targets.reshape(-1), ignore_index=PAD)
        valid = targets != PAD
        acc = ((outputs.argmax(-1) == targets) & valid).sum() / valid.sum().clamp_min(1)
        return loss, {"token_acc": acc}
    pred = outputs[..., 0]
    targets = targets.to(pred.dtype)
    loss = F.l1_loss(pred, targets) if model.hparams.loss == "l1" else F.mse_loss(pred, targets)
    return loss, {"mae": (pred - targets).abs().mean()}


def eval_step(model: Any, batch: dict[str, torch.Tensor], prefix: str) -> None:
    bs = batch["inputs"].shape[0]
    outputs = model.teacher_forced(batch["inputs"], batch["targets"], batch.get("lengths"), 1.0)
    loss, metrics = model.loss_and_metrics(outputs, batch["targets"])
    model.log(f"{prefix}_loss", loss, prog_bar=True, sync_dist=True, batch_size=bs)
    for k, v in metrics.items():
        model.log(f"{prefix}_{k}", v, sync_dist=True, batch_size=bs)
    if model.tokens_out:  # what decoding really gives: greedy, no teacher
        hyps = model.greedy(batch["inputs"], batch.get("lengths"))
        refs = strip(batch["targets"])
        errors = sum(edit_distance(h, r) for h, r in zip(hyps, refs, strict=True))
        model.log(
            f"{prefix}_cer",
            errors / max(1, sum(len(r) for r in refs)),
            prog_bar=True,
            sync_dist=True,
            batch_size=bs,
        )
        model.log(
            f"{prefix}_seq_acc",
            sum(h == r for h, r in zip(hyps, refs, strict=True)) / bs,
            sync_dist=True,
            batch_size=bs,
        )
    else:
        pred = model.forecast(batch["inputs"])
        model.log(
            f"{prefix}_free_mae",
            (pred - batch["targets"]).abs().mean(),
            prog_bar=True,
            sync_dist=True,
            batch_size=bs,
        )
