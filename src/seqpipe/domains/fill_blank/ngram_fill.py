"""The n-gram on the blanks: log2 P(true) of every masked character, reading left context only
(seqpipe.domains.fill_blank.task's docstring says how its guesses of a blank's earlier characters are made)."""

from __future__ import annotations

import numpy as np

from seqpipe.domains.text.ngram import KneserNeyLM


def _distributions(lm: KneserNeyLM, order: int, contexts: np.ndarray, ids: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """(N, len(ids)) probabilities of the characters ``ids`` after each (N, order-1) context, renormalized."""
    v = len(ids)
    out = np.empty((len(contexts), v))
    for s in range(0, len(contexts), chunk):
        c = contexts[s : s + chunk]
        n = len(c)
        p = lm._prob(order, np.repeat(c, v, axis=0), np.tile(ids, n), np.full(n * v, order - 1))
        out[s : s + n] = p.reshape(n, v)
    return out / out.sum(1, keepdims=True)


def ngram_logps(
    lm: KneserNeyLM,
    order: int,
    stream: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    oracle: bool,
    allowed: np.ndarray | None = None,
    beam: int = 4,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The n-gram reading left context at every masked character (seqpipe.domains.fill_blank.task says how).

    Not peeking (``oracle=False``), the prediction for the j-th character of a blank is the n-gram's
    own marginal over the earlier blank characters, approximated by its ``beam`` most probable fills
    of them (a mixture of their next-character distributions). ``allowed``: ids a blank can hold
    (letters, when whole words are masked); the n-gram's distribution is renormalized over them --
    the models learn the same fact from the training blanks.
    """
    stream = np.asarray(stream)
    ids = np.flatnonzero(allowed) if allowed is not None else np.arange(lm.vocab)
    total = int(lengths.sum())
    logps, hits = np.zeros(total), np.zeros(total, bool)
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    span_of = np.repeat(np.arange(len(starts)), lengths)
    pad, k = order - 1, (1 if oracle else beam)
    left = (
        stream[starts[:, None] - pad + np.arange(pad)[None, :]].astype(np.int64)
        if pad
        else np.zeros((len(starts), 0), np.int64)
    )
    hyps = np.repeat(left[:, None, :], k, axis=1)  # (N, K, pad): contexts of the K best fills so far
    weight = np.zeros((len(starts), k))
    weight[:, 0] = 1.0
    for j in range(int(lengths.max(initial=0))):
        sel = np.flatnonzero(lengths > j)
        pos = starts[sel] + j
        true = stream[pos].astype(np.int64)
        dist = _distributions(lm, order, hyps[sel].reshape(len(sel) * k, pad), ids).reshape(len(sel), k, len(ids))
        mix = (weight[sel][:, :, None] * dist).sum(1)
        col = np.searchsorted(ids, true)
        ok = (col < len(ids)) & (ids[np.minimum(col, len(ids) - 1)] == true)
        p_true = np.where(ok, mix[np.arange(len(sel)), np.minimum(col, len(ids) - 1)], 0.0)
        logps[first[sel] + j] = np.log2(np.maximum(p_true, 1e-300))
        hits[first[sel] + j] = ids[mix.argmax(1)] == true
        if pad == 0:
            continue
        if oracle:
            nxt, w = true[:, None], np.ones((len(sel), 1))
            src = np.zeros((len(sel), 1), np.int64)
        else:  # keep the K most probable extensions of the K fills
            joint = (weight[sel][:, :, None] * dist).reshape(len(sel), -1)
            top = np.argsort(-joint, axis=1)[:, :k]
            src, nxt = top // len(ids), ids[top % len(ids)]
            w = np.take_along_axis(joint, top, 1)
            w = w / np.maximum(w.sum(1, keepdims=True), 1e-300)
        old = hyps[sel]
        prev = np.take_along_axis(old, src[:, :, None], 1)
        hyps[sel] = np.concatenate([prev[:, :, 1:], nxt[:, :, None]], axis=2)
        weight[sel] = w
    return logps, hits, span_of
