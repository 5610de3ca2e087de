"""A cache n-gram: counts of the test text already read, the n-gram's side of dynamic evaluation.

Dynamic evaluation adapts a neural model's weights on the test stream as it is read; the matching
adaptation of a count model is a cache (Kuhn & De Mori 1990), here an n-gram one: interpolated
Witten-Bell estimates from the characters scored so far, mixed with the static Kneser-Ney model.

"Read so far" follows the lane layout of the text evaluation: the stream is cut into ``lanes``
contiguous lanes, read ``window`` characters at a time, all lanes per window. The read order is
(window, lane, offset in lane); the cache that predicts a character holds every n-gram whose last
character comes earlier in that order -- never the character itself or anything after it.
Counting is vectorized: each count "before rank r" is a ``searchsorted`` over occurrences sorted
by (n-gram, rank), so orders 1-8 over 250 k characters take about 2 seconds.
"""

from __future__ import annotations

import numpy as np

from seqpipe.errors import SeqpipeError


def read_ranks(lanes: int, lane_len: int, window: int) -> np.ndarray:
    """Rank of each (lane, offset) in the read order (window, lane, offset); shape (lanes, lane_len).

    Offset 0 (a lane's first character, never scored) is read with the lane's first window."""
    offset = np.arange(lane_len)
    w = np.maximum(offset - 1, 0) // window
    key = (w[None, :] * lanes + np.arange(lanes)[:, None]) * lane_len + offset[None, :]
    ranks = np.empty(key.size, dtype=np.int64)
    ranks[np.argsort(key, axis=None, kind="stable")] = np.arange(key.size)
    return ranks.reshape(lanes, lane_len)


def _count_before(keys: np.ndarray, ranks: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """For every position i: how many valid positions j with keys[j] == keys[i] have ranks[j] < ranks[i]."""
    kid = np.unique(keys, return_inverse=True)[1].astype(np.int64)  # dense ids: kid * span never overflows
    span = int(ranks.max()) + 1
    occ = np.sort(kid[valid] * span + ranks[valid])
    return np.searchsorted(occ, kid * span + ranks) - np.searchsorted(occ, kid * span)


def _first_before(keys: np.ndarray, ctx: np.ndarray, ranks: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """For every position i: distinct keys with context ctx[i] first seen (valid) at a rank < ranks[i]."""
    v = np.flatnonzero(valid)
    order = np.lexsort((ranks[v], keys[v]))  # by key, then rank: the first row of each key is its first sighting
    k_sorted = keys[v][order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = k_sorted[1:] != k_sorted[:-1]
    is_first = np.zeros(len(keys), dtype=bool)
    is_first[v[order[first]]] = True
    return _count_before(ctx, ranks, is_first)


def cache_log2_probs(
    tokens: np.ndarray, lanes: int, lane_len: int, starts: np.ndarray, window: int, order: int, vocab: int
) -> np.ndarray:
    """log2 P_cache(x | lane history) for every lane position but the first: shape (lanes, lane_len - 1).

    Interpolated Witten-Bell over orders 1..``order`` from the already-read text, down to a uniform
    distribution; context never crosses a lane's start (the model's state does not either)."""
    if order < 1:
        raise SeqpipeError(f"cache order must be >= 1, got {order}", where="evaluate.dynamic")
    if vocab ** (order + 1) >= 2**62:
        raise SeqpipeError(f"cache order {order} with vocabulary {vocab} overflows 64-bit n-gram keys")
    grid = np.stack([np.asarray(tokens[s : s + lane_len], dtype=np.int64) for s in starts])
    ranks = read_ranks(len(starts), lane_len, window).ravel()
    offset = np.broadcast_to(np.arange(lane_len), grid.shape).ravel()
    word = grid.ravel()
    p = np.full(word.shape, 1.0 / vocab)
    ctx = np.zeros(word.shape, dtype=np.int64)  # the (k-1)-character context packed as an integer
    for k in range(1, order + 1):
        if k > 1:  # extend the context by the character k-1 back (zero where it would cross the lane start)
            back = np.zeros_like(grid)
            back[:, k - 1 :] = grid[:, : lane_len - (k - 1)]
            ctx = ctx + back.ravel() * vocab ** (k - 2)
        valid = offset >= k - 1  # the k-gram ending here lies inside the lane
        key = ctx * vocab + word
        c_hx = _count_before(key, ranks, valid)
        c_h = _count_before(ctx, ranks, valid)
        types = _first_before(key, ctx, ranks, valid)
        p_k = (c_hx + types * p) / np.maximum(c_h + types, 1)
        p = np.where(valid & (c_h > 0), p_k, p)
    return np.log2(p.reshape(grid.shape)[:, 1:])
