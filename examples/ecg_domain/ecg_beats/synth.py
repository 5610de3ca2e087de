"""A seeded generator of ECG-like heartbeats: the example's raw data, standing in for a real recording.

Each beat is a window of ``LENGTH`` samples at ``FS`` Hz around its R peak, built from Gaussian bumps
(P, Q, R, S, T waves) with random amplitude, width and timing jitter, baseline wander and noise:

- ``normal``:    P wave, narrow QRS, upright T wave;
- ``premature``: an early beat: no P wave, the previous beat's T wave still at the start of the window;
- ``wide_qrs``:  a QRS about twice as wide with a deeper S, and an inverted T wave (as in bundle
                 branch block).

``python -m ecg_beats.synth --out data/raw/ecg`` writes ``beats.npz`` (``signal``: float32 (n, LENGTH),
``label``: the class names, ``fs``): the same bytes for the same seed and count.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

FS = 100  # samples a second
LENGTH = 64  # samples a beat (0.64 s)
R_AT = 24  # where the R peak sits in the window (before jitter)
CLASSES = ("normal", "premature", "wide_qrs")
SHARES = (0.5, 0.25, 0.25)  # class proportions of a generated set


def _bump(t: np.ndarray, center: float, width: float, amp: float) -> np.ndarray:
    return amp * np.exp(-0.5 * ((t - center) / width) ** 2)


def beat(kind: str, rng: np.random.Generator) -> np.ndarray:
    """One beat of class ``kind`` (float32, ``LENGTH`` samples), every random draw from ``rng``."""
    t = np.arange(LENGTH, dtype=np.float64) / FS
    r = (R_AT + rng.integers(-3, 4)) / FS  # R-peak jitter
    s = rng.uniform(0.7, 1.3)  # width scale
    amp = rng.uniform(0.7, 1.3)
    qrs = rng.uniform(1.6, 2.4) if kind == "wide_qrs" else 1.0
    x = _bump(t, r - 0.025 * qrs, 0.008 * qrs * s, -0.12)  # Q
    x += _bump(t, r, 0.010 * qrs * s, 1.0)  # R
    x += _bump(t, r + 0.025 * qrs, 0.010 * qrs * s, -0.45 if kind == "wide_qrs" else -0.25)  # S
    x += _bump(t, r + 0.25, 0.045 * s, -0.25 if kind == "wide_qrs" else 0.3)  # T
    if kind == "premature":
        x += _bump(t, r - rng.uniform(0.16, 0.22), 0.045 * s, rng.uniform(0.1, 0.35))  # the previous beat's T
    else:
        x += _bump(t, r - 0.16, 0.022 * s, rng.uniform(0.04, 0.2))  # P
    phase, freq = rng.uniform(0, 2 * np.pi), rng.uniform(0.2, 0.5)
    x = amp * x + 0.15 * np.sin(2 * np.pi * freq * t + phase)  # baseline wander
    return (x + rng.normal(0.0, 0.1, LENGTH)).astype(np.float32)


def generate(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` beats (``SHARES`` of each class, in random order) and their class names."""
    if n < 10 * len(CLASSES):
        raise ValueError(f"generate at least {10 * len(CLASSES)} beats, got {n}")
    rng = np.random.default_rng(seed)
    counts = [int(round(n * share)) for share in SHARES[:-1]]
    kinds = np.array([k for k, c in zip(CLASSES, [*counts, n - sum(counts)], strict=True) for _ in range(c)])
    kinds = kinds[rng.permutation(n)]
    return np.stack([beat(str(k), rng) for k in kinds]), kinds


def write(out: Path, n: int = 600, seed: int = 0) -> Path:
    """``out/beats.npz``."""
    signal, label = generate(n, seed)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "beats.npz"
    np.savez(path, signal=signal, label=label, fs=np.int64(FS))
    return path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("data/raw/ecg"), help="folder for beats.npz")
    p.add_argument("--n", type=int, default=600, help="number of beats")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(write(args.out, args.n, args.seed))


if __name__ == "__main__":
    main()
