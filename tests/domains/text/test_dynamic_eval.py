"""Dynamic evaluation: the cache n-gram and the adapting model see only what was already read."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from seqpipe.domains.text.cache import cache_log2_probs, read_ranks
from seqpipe.domains.text.dynamic import dynamic_log2_probs
from seqpipe.domains.text.lanes import lane_layout, stream_log2_probs


def reference_cache(tokens, lanes, window, order, vocab):
    """Read the lanes one character at a time in (window, lane, offset) order, with plain dict counts."""
    starts, lane_len = lane_layout(len(tokens), lanes)
    grid = [list(tokens[s : s + lane_len]) for s in starts]
    events = sorted((max(o - 1, 0) // window, lane, o) for lane in range(len(starts)) for o in range(lane_len))
    seen: dict[int, Counter] = {k: Counter() for k in range(1, order + 1)}
    out = np.zeros((len(starts), lane_len - 1))
    for _, lane, o in events:
        x = grid[lane][o]
        if o >= 1:  # predict, then count
            p = 1.0 / vocab
            for k in range(1, order + 1):
                if o < k - 1:
                    break
                h = tuple(grid[lane][o - k + 1 : o])
                c_h = sum(c for (hh, _), c in seen[k].items() if hh == h)
                if c_h == 0:
                    continue
                types = sum(1 for (hh, _) in seen[k] if hh == h)
                p = (seen[k][(h, x)] + types * p) / (c_h + types)
            out[lane, o - 1] = np.log2(p)
        for k in range(1, order + 1):
            if o >= k - 1:
                seen[k][(tuple(grid[lane][o - k + 1 : o]), x)] += 1
    return out


@pytest.mark.parametrize("lanes,window,order", [(1, 5, 3), (3, 4, 2), (4, 7, 4)])
def test_cache_equals_a_character_by_character_reference(lanes, window, order):
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 5, size=150)
    starts, lane_len = lane_layout(len(tokens), lanes)
    fast = cache_log2_probs(tokens, len(starts), lane_len, starts, window, order, vocab=5)
    assert np.allclose(fast, reference_cache(tokens, lanes, window, order, 5))


def test_cache_never_sees_the_character_it_predicts():
    # a stream of distinct ids: nothing read before can predict the next one above its back-off share
    tokens = np.arange(60)
    starts, lane_len = lane_layout(len(tokens), 2)
    lp = cache_log2_probs(tokens, len(starts), lane_len, starts, window=8, order=3, vocab=60)
    assert np.all(lp <= np.log2(1 / 60) + 1e-9)


def test_cache_learns_a_repeated_phrase():
    phrase = np.array([1, 2, 3, 4, 0])
    tokens = np.tile(phrase, 40)
    starts, lane_len = lane_layout(len(tokens), 1)
    lp = cache_log2_probs(tokens, 1, lane_len, starts, window=10, order=3, vocab=5)
    assert lp[0, :5].mean() < -1.5  # before it has read the phrase
    assert lp[0, -50:].mean() > -0.2  # after: nearly certain


def test_read_ranks_follow_window_then_lane_then_offset():
    r = read_ranks(lanes=2, lane_len=5, window=2)
    # window 0 holds offsets 0..2 of each lane (offset 0 is read with the first window), then window 1: 3..4
    assert r.tolist() == [[0, 1, 2, 6, 7], [3, 4, 5, 8, 9]]


class Bigram(torch.nn.Module):
    """A stateless next-token model: logits from a table indexed by the current token."""

    def __init__(self, vocab: int):
        super().__init__()
        self.table = torch.nn.Embedding(vocab, vocab)
        torch.nn.init.zeros_(self.table.weight)

    def forward(self, x, state=None):
        return self.table(x), state


def test_dynamic_model_scores_before_it_adapts_and_leaves_the_model_alone():
    tokens = np.tile(np.array([0, 1, 2, 3]), 50)
    model = Bigram(4)
    before = model.table.weight.detach().clone()
    static = stream_log2_probs(model, tokens, lanes=2, window=8)
    no_lr = dynamic_log2_probs(model, tokens, lanes=2, window=8, lr=0.0)
    adapted = dynamic_log2_probs(model, tokens, lanes=2, window=8, lr=5.0)
    assert torch.equal(model.table.weight, before)
    assert np.allclose(no_lr, static)
    assert np.allclose(adapted[:, :8], static[:, :8])  # the first window is scored before any update
    assert adapted[:, -8:].mean() > -0.1 > static.mean()  # later windows: learned from what was read


def test_dynamic_model_cannot_peek_at_the_window_it_scores():
    # every window holds tokens never seen before: adapting on read windows cannot help predict it
    tokens = np.arange(40)
    model = Bigram(40)
    adapted = dynamic_log2_probs(model, tokens, lanes=1, window=4, lr=5.0)
    assert np.all(adapted <= np.log2(1 / 40) + 1e-6)


def test_dynamic_evaluation_drops_no_ngram_rows():
    """The text LSTM's hashed n-gram rows are dropped in training; adapting in train mode must not drop them: with
    lr 0 dynamic evaluation is the static score, and two runs are the same bits."""
    from seqpipe.data.spec import DataSpec
    from seqpipe.models import RecurrentModel

    torch.manual_seed(0)
    spec = DataSpec(input="tokens", target="next_token", vocab_size=5, causal=True).to_dict()
    model = RecurrentModel(
        spec=spec, hidden_size=8, num_layers=1, embedding_dim=4, ngram_orders=[2, 3], ngram_dropout=0.5
    )
    tokens = np.random.default_rng(0).integers(0, 5, 300)
    static = stream_log2_probs(model.eval(), tokens, lanes=2, window=16)
    assert np.allclose(dynamic_log2_probs(model, tokens, lanes=2, window=16, lr=0.0), static)
    a, b = (dynamic_log2_probs(model, tokens, lanes=2, window=16, lr=0.5) for _ in range(2))
    assert np.array_equal(a, b) and not np.allclose(a, static)
