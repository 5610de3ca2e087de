"""Baselines a recurrent model must beat: hand-made beat features + nearest centroid or softmax regression.

Plain numpy, deterministic (no random draws): the same data gives the same numbers. Features of a beat:
its waveform averaged over ``BINS`` equal bins, its peak, trough, spread and the width of its main peak
at half height (a QRS-width proxy).
"""

from __future__ import annotations

import numpy as np

BINS = 8


def beat_features(beats: np.ndarray) -> np.ndarray:
    """(n, BINS + 4) features of (n, samples) beats."""
    n, length = beats.shape
    binned = beats[:, : length // BINS * BINS].reshape(n, BINS, -1).mean(2)
    peak = beats.max(1)
    base = np.median(beats, 1)
    width = (beats > (base + (peak - base) / 2)[:, None]).sum(1)  # samples above half the peak's height
    return np.column_stack([binned, peak, beats.min(1), beats.std(1), width]).astype(np.float64)


class Standardize:
    """Feature scaling fitted on train."""

    def fit(self, X: np.ndarray) -> Standardize:
        self.mean, self.std = X.mean(0), X.std(0) + 1e-8
        return self

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean) / self.std


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


class NearestCentroid:
    """Each class's mean standardized feature vector; a beat gets the class whose mean is nearest."""

    def fit(self, X: np.ndarray, y: np.ndarray, k: int) -> NearestCentroid:
        self.scale = Standardize().fit(X)
        Z = self.scale(X)
        self.centroids = np.stack([Z[y == c].mean(0) for c in range(k)])
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        d = ((self.scale(X)[:, None, :] - self.centroids[None]) ** 2).sum(2)
        return softmax(-0.5 * d)


class SoftmaxRegression:
    """Multinomial logistic regression by full-batch gradient descent (L2 penalty ``l2``), from zeros."""

    def __init__(self, l2: float = 0.01, steps: int = 500, lr: float = 0.5):
        self.l2, self.steps, self.lr = l2, steps, lr

    def fit(self, X: np.ndarray, y: np.ndarray, k: int) -> SoftmaxRegression:
        self.scale = Standardize().fit(X)
        Z = np.column_stack([self.scale(X), np.ones(len(X))])
        onehot = np.eye(k)[y]
        self.W = np.zeros((Z.shape[1], k))
        for _ in range(self.steps):
            grad = Z.T @ (softmax(Z @ self.W) - onehot) / len(Z) + self.l2 * self.W
            self.W -= self.lr * grad
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return softmax(np.column_stack([self.scale(X), np.ones(len(X))]) @ self.W)


def class_metrics(y: np.ndarray, probs: np.ndarray, prefix: str = "test_") -> dict[str, float]:
    """Accuracy, balanced accuracy (mean recall over classes: chance is 1/classes) and macro F1."""
    k = probs.shape[1]
    pred = probs.argmax(1)
    recall, f1 = [], []
    for c in range(k):
        tp = float(((pred == c) & (y == c)).sum())
        n_true, n_pred = float((y == c).sum()), float((pred == c).sum())
        if n_true:
            recall.append(tp / n_true)
        f1.append(2 * tp / (n_true + n_pred) if n_true + n_pred else 0.0)
    out = {"accuracy": float((pred == y).mean()), "balanced_accuracy": float(np.mean(recall))}
    out["macro_f1"] = float(np.mean(f1))
    return {f"{prefix}{name}": v for name, v in out.items()}
