"""The fixed-segment baseline for spoken digit strings: what one tries before a sequence model.

The number of digits is guessed from the utterance's duration (least squares on train: frames -> digits,
rounded and clipped to 1..max_digits); the utterance is cut into that many equal segments; each segment's
mean and standard deviation of normalized log-mel go to a logistic regression trained on train utterances
cut into their true number of equal segments.
"""

from __future__ import annotations

import numpy as np


def segment_vectors(x: np.ndarray, n: int) -> np.ndarray:
    """(n, 2F): mean and std of each of n equal segments of frames x (T, F)."""
    edges = np.linspace(0, len(x), n + 1).round().astype(int)
    rows = []
    for a, b in zip(edges[:-1], edges[1:], strict=False):
        seg = x[a : max(b, a + 1)]
        rows.append(np.concatenate([seg.mean(0), seg.std(0)]))
    return np.stack(rows)


class FixedSegments:
    """Digits from duration (least squares), equal segments, logistic regression per segment."""

    def __init__(self, max_digits: int, C: float = 1.0):
        self.max_digits, self.C = max_digits, C

    def fit(self, frames: list[np.ndarray], texts: list[str]) -> FixedSegments:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        t = np.array([len(f) for f in frames], float)
        n = np.array([len(s) for s in texts], float)
        self.coef = np.polyfit(t, n, 1)
        X = np.concatenate([segment_vectors(f, len(s)) for f, s in zip(frames, texts, strict=False)])
        y = np.array([int(c) for s in texts for c in s])
        self.clf = make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=300)).fit(X, y)
        return self

    def count(self, frames: list[np.ndarray]) -> np.ndarray:
        t = np.array([len(f) for f in frames], float)
        return np.clip(np.round(np.polyval(self.coef, t)), 1, self.max_digits).astype(int)

    def predict(self, frames: list[np.ndarray]) -> list[str]:
        counts = self.count(frames)
        X = np.concatenate([segment_vectors(f, n) for f, n in zip(frames, counts, strict=False)])
        digits = self.clf.predict(X)
        out, i = [], 0
        for n in counts:
            out.append("".join(str(d) for d in digits[i : i + n]))
            i += n
        return out
