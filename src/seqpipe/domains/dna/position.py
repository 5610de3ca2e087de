"""Position-aware baselines on one-hot bases: what a bioinformatician fits first on aligned sites.

Features of a sequence: the one-hot base (A, C, G, T) at every position 1..L, flattened to 4L columns
(N, padding and positions past the record's end are all-zero rows). Sequences are left-aligned and
cut at L (the longest training record unless given), so position j means the same offset in every
record -- the setting of splice sites, promoters and other sets centred on a landmark.

- ``PositionalLogisticRegression``: a (multinomial) logistic regression on those columns: one weight
  per (position, base) and class, i.e. a position weight matrix fitted discriminatively (the PWM-like
  linear model). Pure-positional: it cannot see a motif that moves.
- ``PositionalBoosting``: scikit-learn's HistGradientBoostingClassifier on the same columns, which
  adds interactions between positions (e.g. "G at +1 and T at +2") at a depth chosen on val.

Both are deterministic for a given seed; the choice of C / depth happens in the evaluator, on val.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from seqpipe.domains.dna.source.alphabet import A


def onehot_positions(records: Sequence[np.ndarray], length: int) -> np.ndarray:
    """(n, 4 * length) float32: one-hot base at each of the first ``length`` positions (left-aligned)."""
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    X = np.zeros((len(records), length, 4), np.float32)
    for i, r in enumerate(records):
        x = np.asarray(r)[:length].astype(np.int64) - A  # A,C,G,T -> 0..3; N (and pad) fall outside
        ok = (x >= 0) & (x <= 3)
        X[i, np.flatnonzero(ok), x[ok]] = 1.0
    return X.reshape(len(records), 4 * length)


class _Positional:
    """Shared plumbing: the feature length is fixed at fit time (the longest training record by default)."""

    length: int | None

    def features(self, records: Sequence[np.ndarray]) -> np.ndarray:
        return onehot_positions(records, self.length)

    def _set_length(self, records: Sequence[np.ndarray] | None, X: np.ndarray | None) -> None:
        if self.length is None:
            self.length = X.shape[1] // 4 if X is not None else max(len(r) for r in records)

    def predict_proba(self, records: Sequence[np.ndarray] | None = None, X: np.ndarray | None = None) -> np.ndarray:
        return self.clf.predict_proba(self.features(records) if X is None else X)


class PositionalLogisticRegression(_Positional):
    """One-hot base by position -> LogisticRegression(C) (L2; multinomial for more than two classes)."""

    def __init__(self, C: float = 0.1, length: int | None = None, max_iter: int = 3000, seed: int = 0):
        self.C, self.length, self.max_iter, self.seed = float(C), length, max_iter, seed

    def fit(
        self, records: Sequence[np.ndarray] | None, y: np.ndarray, X: np.ndarray | None = None
    ) -> PositionalLogisticRegression:
        from sklearn.linear_model import LogisticRegression

        self._set_length(records, X)
        X = self.features(records) if X is None else X
        self.clf = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.seed).fit(X, y)
        return self

    def weights(self) -> np.ndarray:
        """(classes or 1, length, 4) coefficients: the learned position weight matrix of each class."""
        return self.clf.coef_.reshape(len(self.clf.coef_), self.length, 4)


class PositionalBoosting(_Positional):
    """One-hot base by position -> HistGradientBoostingClassifier(max_depth) with early stopping.

    The early-stopping holdout is carved from the training records passed to ``fit`` (never val/test).
    """

    def __init__(
        self,
        max_depth: int | None = 3,
        length: int | None = None,
        learning_rate: float = 0.1,
        max_iter: int = 300,
        seed: int = 0,
    ):
        self.max_depth, self.length, self.learning_rate, self.max_iter, self.seed = (
            max_depth,
            length,
            learning_rate,
            max_iter,
            seed,
        )

    def fit(
        self, records: Sequence[np.ndarray] | None, y: np.ndarray, X: np.ndarray | None = None
    ) -> PositionalBoosting:
        from sklearn.ensemble import HistGradientBoostingClassifier

        self._set_length(records, X)
        X = self.features(records) if X is None else X
        self.clf = HistGradientBoostingClassifier(
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            early_stopping=True,
            validation_fraction=0.1,
            n_iter_no_change=10,
            random_state=self.seed,
        ).fit(X, y)
        return self


__all__ = ["PositionalBoosting", "PositionalLogisticRegression", "onehot_positions"]
