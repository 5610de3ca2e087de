"""Hashed n-gram embeddings: the identity of the last n tokens as an input, for a few orders n.

A character model's recurrent state has to learn, by gradient, what a Kneser-Ney 8-gram gets by
counting: which exact contexts came before. Here each order n has its own table; the n-gram that
ends at step t (its n token ids, the current one included) is hashed to a row of that table, the
rows of all orders are summed and projected to the token embedding's size, and added to it. The
lookups sit outside the sequential recurrence, so they cost a gather and one batched matmul a
window; what they add is memory of contexts (the byte-level n-gram hash embeddings of the Byte
Latent Transformer, Pagnoni et al. 2024, on a recurrent core).

An n-gram that ends near a window's start reaches back into the previous window: the caller keeps
the last ``context`` token ids of every lane (``HashedNgrams.next_history``) beside the recurrent
state and passes them with the next window; ``PAD`` fills history before a stream's start.
The hash is integer arithmetic on int64 tensors: the same rows on every machine.
"""

from __future__ import annotations

import torch
from torch import nn

from seqpipe.errors import SeqpipeError

# multiplier of a 64-bit linear congruential generator (Knuth's MMIX), below 2**63 so it fits int64
_MIX = 6364136223846793005


class HashedNgrams(nn.Module):
    """Sum over orders of hashed n-gram embeddings, projected to ``out_dim``.

    Args:
        vocab_size: token ids run 0..vocab_size-1; ``vocab_size`` itself marks "before the stream".
        out_dim: the size of the token embedding the result is added to.
        orders: n-gram orders, each >= 2 (order 1 is the token embedding itself).
        buckets: rows of each order's table; colliding n-grams share a row.
        dim: width of the tables (the projection maps it to ``out_dim``).
        dropout: in training, each order's row is dropped at each step with this probability (the rest
            scaled up). Without it the tables memorize the training text: over the 5 epochs of the text
            recipe the Bible's validation bpc got worse than no tables at all (README, Text).
    """

    def __init__(
        self,
        vocab_size: int,
        out_dim: int,
        orders: list[int],
        buckets: int = 16384,
        dim: int = 32,
        dropout: float = 0.0,
    ):
        super().__init__()
        orders = sorted({int(n) for n in orders})
        if not orders or orders[0] < 2 or orders[-1] > 16:
            raise SeqpipeError(
                f"n-gram orders must be between 2 and 16, got {orders}",
                where="model.ngram_orders",
                fix="list orders such as [2, 3, 4, 5, 6, 8], or leave ngram_orders unset for none",
            )
        if buckets < 1 or dim < 1:
            raise SeqpipeError(
                f"ngram_buckets and ngram_dim must be >= 1, got {buckets} and {dim}", where="model.ngram_buckets"
            )
        if not 0.0 <= dropout < 1.0:
            raise SeqpipeError(f"ngram_dropout must be in [0, 1), got {dropout}", where="model.ngram_dropout")
        self.vocab_size, self.orders, self.buckets, self.dropout = vocab_size, orders, buckets, dropout
        self.context = orders[-1] - 1
        self.tables = nn.ModuleList(nn.Embedding(buckets, dim) for _ in orders)
        for table in self.tables:
            nn.init.normal_(table.weight, std=0.02)
        self.proj = nn.Linear(dim, out_dim)

    @property
    def pad(self) -> int:
        return self.vocab_size

    def empty_history(self, batch: int, device: torch.device | None = None) -> torch.Tensor:
        """History for lanes at the start of their streams: every slot 'before the stream'."""
        return torch.full((batch, self.context), self.pad, dtype=torch.long, device=device)

    def bucket_ids(self, tokens: torch.Tensor, history: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Per order, the table row of the n-gram ending at each step: (B, T) each."""
        b, t = tokens.shape
        if history is None:
            history = self.empty_history(b, tokens.device)
        full = torch.cat([history.to(tokens.device), tokens], dim=1)
        c = self.context
        ids, rows, k = torch.zeros_like(tokens), [], 0
        for n in self.orders:  # extend the id one token further back at a time, up to each order
            while k < n:
                ids = ids * (self.vocab_size + 1) + full[:, c - k : c - k + t]
                k += 1
            h = (ids + n) * _MIX
            rows.append((h ^ (h >> 31)) % self.buckets)
        return rows

    def forward(self, tokens: torch.Tensor, history: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) token ids -> (B, T, out_dim) features to add to the token embedding."""
        summed = None
        for table, r in zip(self.tables, self.bucket_ids(tokens, history), strict=True):
            v = table(r)
            if self.training and self.dropout > 0:
                keep = torch.rand(v.shape[:2], device=v.device) >= self.dropout
                v = v * (keep.unsqueeze(-1).to(v.dtype) / (1 - self.dropout))
            summed = v if summed is None else summed + v
        return self.proj(summed)

    def next_history(self, history: torch.Tensor | None, tokens: torch.Tensor) -> torch.Tensor:
        """The last ``context`` token ids after reading ``tokens`` (the next window's history)."""
        if history is None:
            history = self.empty_history(tokens.shape[0], tokens.device)
        return torch.cat([history.to(tokens.device), tokens], dim=1)[:, -self.context :]
