"""k-mer count features + logistic regression: the standard alignment-free DNA baseline.

Features of a sequence: for every k in 1..K, the frequency of each of the 4^k k-mers (counts over the
sequence's windows without N, divided by the number of windows), optionally merged with their
reverse complements ("canonical" k-mers, a strand-symmetric model). Counting is vectorized: a
rolling base-4 code over each record, then one bincount per k. Classifier: scikit-learn
LogisticRegression on standardized features (multinomial for more than two classes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from seqpipe.domains.dna.source.alphabet import A
from seqpipe.progress import progress


def kmer_codes(codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Base-4 k-mer index at every window of one record and whether the window is valid (no N/pad)."""
    x = codes.astype(np.int64) - A  # A,C,G,T -> 0..3
    ok = (x >= 0) & (x <= 3)
    n = len(x) - k + 1
    if n <= 0:
        return np.zeros(0, np.int64), np.zeros(0, bool)
    idx = np.zeros(n, np.int64)
    valid = np.ones(n, bool)
    for j in range(k):
        idx = idx * 4 + np.clip(x[j : j + n], 0, 3)
        valid &= ok[j : j + n]
    return idx, valid


def canonical_map(k: int) -> np.ndarray:
    """k-mer index -> index of min(kmer, reverse complement) (a column merge map)."""
    idx = np.arange(4**k)
    digits = (idx[:, None] // 4 ** np.arange(k)[None, :]) % 4  # least significant first = last base
    rc = ((3 - digits) * 4 ** np.arange(k)[::-1][None, :]).sum(1)  # complement, reversed order
    return np.minimum(idx, rc)


def kmer_features(records: Sequence[np.ndarray], ks: Sequence[int], canonical: bool = False) -> np.ndarray:
    """(n_records, sum 4^k) k-mer frequencies for k in ``ks``; canonical merges reverse complements."""
    blocks = []
    for k in ks:
        dim = 4**k
        lens = np.array([max(0, len(r) - k + 1) for r in records])
        flat_idx, flat_ok = [], []
        for r in progress(records, f"counting {k}-mers", total=len(records), unit="seq"):
            i, v = kmer_codes(np.asarray(r), k)
            flat_idx.append(i)
            flat_ok.append(v)
        idx = np.concatenate(flat_idx) if flat_idx else np.zeros(0, np.int64)
        ok = np.concatenate(flat_ok) if flat_ok else np.zeros(0, bool)
        if canonical:
            idx = canonical_map(k)[idx]
        row = np.repeat(np.arange(len(records)), lens)
        counts = np.bincount(row[ok] * dim + idx[ok], minlength=len(records) * dim).reshape(len(records), dim)
        total = counts.sum(1, keepdims=True).clip(min=1)
        feats = counts / total
        if canonical:
            feats = feats[:, np.unique(canonical_map(k))]
        blocks.append(feats.astype(np.float32))
    return np.concatenate(blocks, 1)


class KmerLogisticRegression:
    """k-mer frequencies (k = 1..max_k) -> standardized -> LogisticRegression(C)."""

    def __init__(self, max_k: int = 6, C: float = 1.0, canonical: bool = False, max_iter: int = 2000, seed: int = 0):
        if not 1 <= max_k <= 8:
            raise ValueError(f"max_k must be in 1..8, got {max_k}")
        self.max_k, self.C, self.canonical, self.max_iter, self.seed = max_k, C, canonical, max_iter, seed

    def features(self, records: Sequence[np.ndarray]) -> np.ndarray:
        return kmer_features(records, range(1, self.max_k + 1), self.canonical)

    def fit(self, records: Sequence[np.ndarray], y: np.ndarray, X: np.ndarray | None = None) -> KmerLogisticRegression:
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        X = self.features(records) if X is None else X
        self.scaler = StandardScaler().fit(X)
        self.clf = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.seed)
        self.clf.fit(self.scaler.transform(X), y)
        return self

    def predict_proba(self, records: Sequence[np.ndarray] | None = None, X: np.ndarray | None = None) -> np.ndarray:
        X = self.features(records) if X is None else X
        return self.clf.predict_proba(self.scaler.transform(X))


__all__ = ["KmerLogisticRegression", "canonical_map", "kmer_codes", "kmer_features"]
