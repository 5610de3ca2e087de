"""Decoding a trained Seq2Seq without a teacher: numeric forecasts from its own predictions, greedy and
beam-search token decoding, and the helpers that read the outputs (strip, edit distance).

Separate from the model because search is an algorithm over the model's one-step interface
(``encode``, ``init_feed``, ``embed_prev``, ``step``), not part of what is trained; Seq2Seq's
``forecast`` / ``greedy`` / ``beam_search`` methods call these functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from seqpipe.data.spec import BOS, EOS, PAD
from seqpipe.models.core import State

if TYPE_CHECKING:
    from seqpipe.models.seq2seq import Seq2Seq


@torch.no_grad()
def forecast(model: Seq2Seq, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Numeric outputs decoded from the model's own previous predictions: (B, output_dim)."""
    enc = model.encode(inputs, lengths)
    b = inputs.shape[0]
    state, feed, prev, outs = enc["state"], model.init_feed(enc), None, []
    for _ in range(model.spec.output_dim):
        y, state, feed, _ = model.step(model.embed_prev(prev, b, inputs.device), state, feed, enc)
        prev = y[:, 0]
        outs.append(prev)
    return torch.stack(outs, dim=1)


@torch.no_grad()
def greedy(
    model: Seq2Seq, inputs: torch.Tensor, lengths: torch.Tensor | None = None, max_len: int | None = None
) -> list[list[int]]:
    """Greedy token decoding; each hypothesis stops at its EOS (not included) or at ``max_len``."""
    max_len = max_len or model.hparams.max_decode_len
    enc = model.encode(inputs, lengths)
    b = inputs.shape[0]
    state, feed, prev = enc["state"], model.init_feed(enc), None
    seqs = torch.full((b, max_len), PAD, dtype=torch.long, device=inputs.device)
    done = torch.zeros(b, dtype=torch.bool, device=inputs.device)
    for t in range(max_len + 1):
        logits, state, feed, _ = model.step(model.embed_prev(prev, b, inputs.device), state, feed, enc)
        prev = never_special(logits).argmax(-1)
        done = done | (prev == EOS)
        if t == max_len or bool(done.all()):
            break
        seqs[:, t] = torch.where(done, torch.full_like(prev, PAD), prev)
    return strip(seqs)


@torch.no_grad()
def beam_search(
    model: Seq2Seq,
    inputs: torch.Tensor,
    lengths: torch.Tensor | None = None,
    beam_width: int | None = None,
    max_len: int | None = None,
    length_penalty: float | None = None,
) -> list[list[int]]:
    """Beam search: the ``beam_width`` best partial outputs a sample by summed log probability.

    A hypothesis ends at EOS and keeps its score; search stops when every beam has ended or at
    ``max_len`` tokens. Final scores are divided by length ** length_penalty (0 = raw sums), so
    width 1 returns exactly the greedy output.
    """
    k = beam_width or model.hparams.beam_width
    max_len = max_len or model.hparams.max_decode_len
    alpha = model.hparams.length_penalty if length_penalty is None else length_penalty
    enc = model.encode(inputs, lengths)
    b, dev = inputs.shape[0], inputs.device
    rep = lambda x: x.repeat_interleave(k, dim=0) if x is not None else None  # noqa: E731
    enc = {key: rep(v) for key, v in enc.items() if key != "state"} | {
        "state": _map_state(enc["state"], lambda h: h.repeat_interleave(k, dim=1))
    }
    state, feed, prev = enc["state"], model.init_feed(enc), None
    scores = torch.full((b, k), float("-inf"), device=dev)
    scores[:, 0] = 0.0  # all beams start identical: keep one alive
    seqs = torch.full((b, k, max_len), PAD, dtype=torch.long, device=dev)
    ended = torch.zeros(b, k, dtype=torch.bool, device=dev)
    lens = torch.zeros(b, k, dtype=torch.long, device=dev)
    v = model.out_dim
    for t in range(max_len + 1):
        logits, state, feed, _ = model.step(model.embed_prev(prev, b * k, dev), state, feed, enc)
        logp = torch.log_softmax(never_special(logits.float()), -1).view(b, k, v)
        if t == max_len:  # out of room: every open beam must end here
            logp = torch.where(torch.arange(v, device=dev) == EOS, logp, torch.full_like(logp, float("-inf")))
        # an ended beam continues only with EOS, at no cost
        frozen = torch.full((v,), float("-inf"), device=dev)
        frozen[EOS] = 0.0
        logp = torch.where(ended.unsqueeze(-1), frozen.expand(b, k, v), logp)
        total = (scores.unsqueeze(-1) + logp).view(b, k * v)
        scores, flat = total.topk(k, dim=-1)
        src, tok = flat // v, flat % v
        seqs = seqs.gather(1, src.unsqueeze(-1).expand(-1, -1, max_len)).clone()
        was_ended = ended.gather(1, src)
        lens = lens.gather(1, src)
        ended = was_ended | (tok == EOS)
        if t < max_len:
            writing = ~ended
            seqs[:, :, t] = torch.where(writing, tok, seqs[:, :, t])
            lens = lens + writing.long()
        order = (torch.arange(b, device=dev).unsqueeze(1) * k + src).view(-1)
        state = _map_state(state, lambda h, order=order: h.index_select(1, order))
        feed = feed.index_select(0, order) if feed is not None else None
        prev = tok.view(-1)
        if bool(ended.all()):
            break
    final = scores / (lens.clamp_min(1).float() ** alpha) if alpha else scores
    best = final.argmax(-1)
    out = seqs[torch.arange(b, device=dev), best]
    return strip(out)


def _map_state(state: State, fn: Any) -> State:
    """Apply ``fn`` to the hidden state (and the LSTM cell state)."""
    return tuple(fn(s) for s in state) if isinstance(state, tuple) else fn(state)


def never_special(logits: torch.Tensor) -> torch.Tensor:
    """PAD and BOS are never outputs: rule them out when decoding."""
    return logits.index_fill(-1, torch.tensor([PAD, BOS], device=logits.device), float("-inf"))


def strip(seqs: torch.Tensor) -> list[list[int]]:
    """Padded id rows -> lists of output ids, cut at the first EOS or PAD."""
    out = []
    for row in seqs.tolist():
        ids = []
        for i in row:
            if i in (EOS, PAD):
                break
            ids.append(i)
        out.append(ids)
    return out


def edit_distance(a: Sequence[int], b: Sequence[int]) -> int:
    """Levenshtein distance (substitutions, insertions, deletions all cost 1)."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]
