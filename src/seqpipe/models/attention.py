"""Attention over encoder states for a step-by-step decoder: Luong (general, after the RNN step) or
Bahdanau (additive, before it), padded steps masked.

Separate from Seq2Seq because it is a block with its own math, usable by any decoder; the
model decides where in its step the context is read (see seqpipe.models.seq2seq).
"""

from __future__ import annotations

import torch
from torch import nn


class Attention(nn.Module):
    """Luong (general) or Bahdanau (additive) attention over encoder states, padded steps masked."""

    def __init__(self, kind: str, query_dim: int, memory_dim: int, attn_dim: int):
        super().__init__()
        self.kind = kind
        if kind == "luong":
            self.w = nn.Linear(memory_dim, query_dim, bias=False)
        else:
            self.q = nn.Linear(query_dim, attn_dim, bias=False)
            self.k = nn.Linear(memory_dim, attn_dim)
            self.v = nn.Linear(attn_dim, 1, bias=False)

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        """Precomputed projection of the memory (once per sequence, not per step)."""
        return self.w(memory) if self.kind == "luong" else self.k(memory)

    def forward(
        self, query: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, Q), memory (B, S, M), mask (B, S) True = valid -> context (B, M), weights (B, S)."""
        if self.kind == "luong":
            scores = torch.bmm(keys, query.unsqueeze(-1)).squeeze(-1)
        else:
            scores = self.v(torch.tanh(keys + self.q(query).unsqueeze(1))).squeeze(-1)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        return torch.bmm(weights.unsqueeze(1), memory).squeeze(1), weights
