"""Audio features: log-mel frames of a clip, and of its channel / augmented renditions, in worker processes.

Log-mel spectrograms are computed once at preprocess with librosa and stored as float16
(benchmarks/probes/audio.md measures this against torchaudio's MelSpectrogram in every batch: on CPU the
per-batch transform costs more per epoch than the whole one-off extraction). Predict and evaluate call
``clip_features`` so a new file is featurized exactly as preprocess did it.

Clean features (``featurize_clips``) and renditions (``render_clips``) run through the same worker pool
(``_in_workers``): results come back in input order, and every random draw is seeded by the job itself,
so the store is bitwise the same for any number of workers (tests/domains/audio/test_audio_workers.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from seqpipe.domains.audio.channel import ChannelConfig, apply_channel, augment_rng, augment_wave, channel_rng
from seqpipe.domains.audio.source import crop, load_audio, read_clip
from seqpipe.errors import SeqpipeError

LOG_FLOOR = 1e-6
T = TypeVar("T")


@dataclass(frozen=True)
class FeatureConfig:
    """Log-mel settings (kept in meta.json: predict computes features exactly as preprocess did)."""

    sample_rate: int = 16000
    n_mels: int = 40
    n_fft: int = 400  # 25 ms at 16 kHz
    hop_length: int = 160  # 10 ms
    f_min: float = 20.0
    f_max: float | None = None
    max_seconds: float = 1.5

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@lru_cache(maxsize=8)
def mel_basis(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float | None) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max).astype(np.float32)


def log_mel(wave: np.ndarray, fc: FeatureConfig) -> np.ndarray:
    """librosa log-mel (centered Hann STFT, Slaney mel filters), natural log of power + 1e-6: (frames, n_mels)."""
    import librosa

    power = np.abs(librosa.stft(wave, n_fft=fc.n_fft, hop_length=fc.hop_length, center=True)) ** 2
    mel = mel_basis(fc.sample_rate, fc.n_fft, fc.n_mels, fc.f_min, fc.f_max) @ power
    return np.log(mel + LOG_FLOOR).T.astype(np.float32)


def clip_features(path: str | Path, fc: FeatureConfig) -> np.ndarray:
    """File -> cropped log-mel frames, exactly as preprocess computes them."""
    wave = load_audio(path, fc.sample_rate, fc.max_seconds, min_samples=fc.n_fft)
    return log_mel(crop(wave, int(fc.max_seconds * fc.sample_rate)), fc)


def _featurize(path: Path, fc: FeatureConfig) -> tuple[np.ndarray | None, int, str | None, str | None]:
    """One clip -> (float16 log-mel frames, samples before cropping, None, None), or (None, 0, problem, fix)."""
    try:  # header checked first; only the kept (centered) part is decoded
        wave, seconds = read_clip(path, fc.sample_rate, fc.max_seconds, min_samples=fc.n_fft)
    except SeqpipeError as e:
        return None, 0, e.problem, e.fix
    max_samples = int(fc.max_seconds * fc.sample_rate)
    return log_mel(crop(wave, max_samples), fc).astype(np.float16), round(seconds * fc.sample_rate), None, None


# -- channel and augmented renditions ---------------------------------------------------------
# a job: ("channel", clip row, seed) -> the clip through the channel-shifted test's fixed chain;
#        ("augment", clip row, seed, copy) -> one random training rendition (data/channel.py)
Job = tuple


def _render(item: tuple[Path, list[Job]], fc: FeatureConfig, channel: ChannelConfig) -> list[np.ndarray]:
    """Decode one clip once (as preprocess does) and return the float16 log-mel of each job's rendition."""
    path, jobs = item
    wave = crop(
        load_audio(path, fc.sample_rate, fc.max_seconds, min_samples=fc.n_fft), int(fc.max_seconds * fc.sample_rate)
    )
    out = []
    for job in jobs:
        if job[0] == "channel":
            w = apply_channel(wave, fc.sample_rate, channel, channel_rng(job[2], job[1]))
        else:
            w = augment_wave(wave, fc.sample_rate, augment_rng(job[2], job[1], job[3]))
            w = crop(w, int(fc.max_seconds * fc.sample_rate))
        if len(w) < fc.n_fft:  # a sped-up very short clip: pad to one analysis window
            w = np.pad(w, (0, fc.n_fft - len(w)))
        out.append(log_mel(w, fc).astype(np.float16))
    return out


# -- worker processes -------------------------------------------------------------------------
def featurize_clips(paths: list[Path], fc: FeatureConfig, workers: int = 1) -> Iterator[tuple]:
    """``_featurize`` over ``paths``, in order, in this process or in ``workers`` worker processes."""
    return _in_workers(_featurize, paths, workers, fc)


def render_clips(
    items: list[tuple[Path, list[Job]]], fc: FeatureConfig, channel: ChannelConfig, workers: int = 1
) -> Iterator[list[np.ndarray]]:
    """``_render`` over (path, jobs) pairs, in order, in this process or in ``workers`` worker processes.
    Every draw comes from the job's own seed, so the result is the same for any number of workers."""
    return _in_workers(_render, items, workers, fc, channel)


def _in_workers(fn: Callable[..., T], items: list, workers: int, fc: FeatureConfig, *args: Any) -> Iterator[T]:
    """``fn(item, fc, *args)`` for each item, yielded in input order, here or in ``workers`` processes.

    Workers are forked where the platform allows it (no re-import of torch/librosa a worker) and get
    contiguous batches of items; results are yielded in input order as they complete.
    """
    if workers <= 1 or len(items) < 2:
        with _one_blas_thread():  # between items the caller only appends to lists
            for item in items:
                yield fn(item, fc, *args)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    import soundfile  # noqa: F401  (imported, and librosa's lazy modules loaded, once here: forked workers inherit them)
    import soxr  # noqa: F401

    log_mel(np.zeros(4 * fc.n_fft, np.float32), fc)  # also builds the mel filters once
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    size = max(1, min(64, len(items) // (workers * 8)))  # small batches: balanced, and results stream back
    batches = [items[i : i + size] for i in range(0, len(items), size)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker) as pool:
        futures = [pool.submit(_run_batch, fn, b, fc, *args) for b in batches]
        try:
            for f in futures:
                yield from f.result()
        finally:
            for f in futures:
                f.cancel()


def _run_batch(fn: Callable[..., T], items: list, *args: Any) -> list[T]:
    return [fn(item, *args) for item in items]


_WORKER_LIMIT: Any = None


def _init_worker() -> None:
    global _WORKER_LIMIT
    _WORKER_LIMIT = _one_blas_thread()  # threadpool_limits applies on construction, for the worker's life


def _one_blas_thread():
    """BLAS on one thread while featurizing: the mel projection is a small matrix product, and OpenBLAS's
    threads cost more than they give (2.3x slower on 2 shared cores) and oversubscribe worker processes.
    The features are bitwise the same (tests/domains/audio/test_audio_workers.py)."""
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:  # pragma: no cover
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")
