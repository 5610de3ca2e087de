"""Audio: a folder of clips (or a CSV manifest) -> log-mel frames in the prepared store -> labeled clips.

Reading. ``source`` is a folder in the Speech Commands layout -- one subfolder a label, clips
inside, ``<speaker>_nohash_<n>.wav`` names give the speaker -- or a CSV manifest with columns
``path,label[,speaker]`` (paths relative to the manifest). WAV, FLAC and OGG at any sample rate,
mono or stereo, decoded with soundfile, mixed to mono, resampled (soxr) to ``sample_rate``.
Folders whose name starts with '_' (Speech Commands' ``_background_noise_``) and files at the top
level (README, lists) are not clips and are ignored.

Variable length policy. Clips keep their own length, up to ``max_seconds`` (longer ones are
center-cropped; the count is in meta.json); a batch pads to its longest clip and carries
``lengths``, and every model masks (packs) the padded frames.

Features. Log-mel spectrograms computed once at preprocess with librosa and stored as float16
(benchmarks/audio.md measures this against torchaudio's MelSpectrogram in every batch: on CPU the
per-batch transform costs more per epoch than the whole one-off extraction). Per-mel-band mean
and standard deviation come from the train split only and live in meta.json; clips are
normalized when a batch is built. SpecAugment (torchaudio FrequencyMasking/TimeMasking) is applied
to training batches only.

Real-recording effects (data/channel.py). Val and test clips are also stored through a fixed, seeded
"real channel" (reverb, coloured noise, telephone band, mu-law) for the channel-shifted test
(array ``features_channel``); with ``augment_copies: K`` each train clip gets K random renditions
through the same family of effects (other seeds) as extra training records. Both are computed from the
decoded waveform at preprocess, like the clean features.

Splits are disjoint by speaker (the test split's voices are never heard in training); without
speaker information every clip is its own group. Classes are fitted on train.

Decoding checks the header first (``read_clip``): a sample rate outside 1-768 kHz, no samples, more
than 12 hours, or fewer than ``n_fft`` samples at ``sample_rate`` is bad input; then only the kept
centre of a long clip is decoded. 8-bit unsigned, 16/24/32-bit PCM, float and double WAVs all read.

Bad input (unreadable, truncated, empty, too short or silent file, implausible header, NaN samples,
unsupported format, empty label folder, missing manifest file, non-UTF-8 manifest): ``strict=True`` (default) stops with a SeqpipeError naming the file and the
problem; ``strict=False`` skips it and records path and reason in meta.json["audio"]["skipped"]
and the preprocess log. A dataset with fewer than two classes is refused in both modes.
"""

from __future__ import annotations

import logging
import csv
import math
import struct
import time
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset

from seqpipe.data.channel import ChannelConfig, apply_channel, augment_rng, augment_wave, channel_rng
from seqpipe.data.module import SequenceDataModule
from seqpipe.data.spec import DataSpec
from seqpipe.data.store import SPLIT_CODE, PreparedStore, StoreWriter, fingerprint
from seqpipe.data.windows import pad_batch
from seqpipe.errors import SeqpipeError
from seqpipe.progress import progress

logger = logging.getLogger(__name__)

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg"}
SILENCE_PEAK = 1e-4  # a clip whose peak stays below -80 dBFS is silent
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 768_000  # a header outside this range is corrupt, not a clip
MAX_CLIP_SECONDS = 12 * 3600.0
LOG_FLOOR = 1e-6


@dataclass(frozen=True)
class Clip:
    path: Path
    label: str
    speaker: str | None = None


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


class SkipLog:
    """Strict: raise on the first bad input. Lenient: record (path, reason) and go on."""

    def __init__(self, strict: bool):
        self.strict = strict
        self.items: list[dict[str, str]] = []

    def bad(self, where: Path | str, problem: str, fix: str) -> None:
        if self.strict:
            raise SeqpipeError(problem, where=where, fix=fix + " (or set data.strict: false to skip such files)")
        self.items.append({"path": str(where), "reason": problem})
        logger.warning("audio: skipped %s: %s", where, problem)


# -- listing clips ----------------------------------------------------------------------------
def speaker_of(path: Path) -> str | None:
    """Speech Commands naming: '<speaker>_nohash_<n>.wav' -> speaker."""
    return path.stem.split("_nohash_")[0] if "_nohash_" in path.stem else None


def scan_folder(root: Path, log: SkipLog) -> list[Clip]:
    """Clips from label subfolders; unsupported files and empty label folders are bad input."""
    if not root.is_dir():
        raise SeqpipeError("audio folder not found", where=root, fix="check data.source (a folder or a .csv manifest)")
    clips: list[Clip] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not files:
            log.bad(folder, "empty label folder (no audio files)", "add clips or remove the folder")
            continue
        for f in files:
            if f.suffix.lower() not in AUDIO_SUFFIXES:
                log.bad(
                    f,
                    f"unsupported format '{f.suffix}' (expected {sorted(AUDIO_SUFFIXES)})",
                    "convert it to WAV/FLAC/OGG or remove it",
                )
                continue
            clips.append(Clip(f, folder.name, speaker_of(f)))
    if not clips and not log.items:
        raise SeqpipeError(
            "no label subfolders with audio files",
            where=root,
            fix="lay clips out as <folder>/<label>/<clip>.wav, or pass a CSV manifest",
        )
    return clips


def read_manifest(path: Path, log: SkipLog) -> list[Clip]:
    """CSV with columns path,label[,speaker]; relative paths are relative to the manifest's folder."""
    if not path.is_file():
        raise SeqpipeError("manifest not found", where=path, fix="check data.source")
    try:
        return _read_manifest(path, log)
    except UnicodeDecodeError as e:
        raise SeqpipeError(
            f"manifest is not UTF-8 text (byte 0x{e.object[e.start]:02x})", where=path, fix="save the manifest as UTF-8"
        ) from e
    except csv.Error as e:
        raise SeqpipeError(
            f"malformed manifest CSV: {e}", where=path, fix="check quoting; columns path,label[,speaker]"
        ) from e


def _read_manifest(path: Path, log: SkipLog) -> list[Clip]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        cols = set(reader.fieldnames or [])
        if not {"path", "label"} <= cols:
            raise SeqpipeError(
                f"manifest columns are {sorted(cols)}, need path,label[,speaker]",
                where=path,
                fix="add a header row: path,label,speaker",
            )
        clips = []
        for i, row in enumerate(reader, start=2):
            raw = (row.get("path") or "").strip()
            p = Path(raw)
            p = p if p.is_absolute() else path.parent / p
            where = f"{path}:{i} ({raw})"
            if not raw:
                log.bad(f"{path}:{i}", "row has no path", "fill the path column or remove the row")
            elif not row.get("label"):
                log.bad(where, "row has no label", "fill the label column")
            elif not p.is_file():
                log.bad(where, "file in manifest does not exist", "fix the path or remove the row")
            elif p.suffix.lower() not in AUDIO_SUFFIXES:
                log.bad(where, f"unsupported format '{p.suffix}'", "convert it to WAV/FLAC/OGG or remove the row")
            else:
                clips.append(Clip(p, row["label"], row.get("speaker") or None))
    return clips


def list_clips(source: str | Path, log: SkipLog) -> list[Clip]:
    source = Path(source)
    return read_manifest(source, log) if source.suffix.lower() == ".csv" else scan_folder(source, log)


# -- decoding ---------------------------------------------------------------------------------
def _check_wav_chunks(path: Path, size: int) -> str | None:
    """libsndfile reads a truncated WAV without complaint; compare the RIFF sizes with the file's."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            return None  # not RIFF/WAVE: let the decoder judge it
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            cid, clen = struct.unpack("<4sI", f.read(8))
            if cid == b"data":
                if head[:4] == b"RIFF" and pos + 8 + clen > size:
                    return f"truncated: the data chunk declares {clen} bytes, the file holds {size - pos - 8}"
                return None
            pos += 8 + clen + (clen & 1)
    return "no 'data' chunk (corrupt or truncated header)"


def load_audio(
    path: str | Path, sample_rate: int, max_seconds: float | None = None, min_samples: int = 1
) -> np.ndarray:
    """Decode one file -> float32 mono at ``sample_rate`` (only the centered ``max_seconds`` when given).
    Raises SeqpipeError naming the file."""
    return read_clip(path, sample_rate, max_seconds, min_samples)[0]


def read_clip(
    path: str | Path, sample_rate: int, max_seconds: float | None = None, min_samples: int = 1
) -> tuple[np.ndarray, float]:
    """(float32 mono wave at ``sample_rate``, the file's duration in seconds).

    The header is checked before anything is decoded: a sample rate outside MIN..MAX_SAMPLE_RATE, a
    duration over MAX_CLIP_SECONDS, no samples, or fewer than ``min_samples`` at ``sample_rate`` are
    errors. With ``max_seconds`` only the centered part that is kept (plus a little resampler context)
    is decoded, then cropped to exactly ``max_seconds`` -- the same samples a full decode + ``crop`` gives
    when no resampling is needed.
    """
    import soundfile as sf
    import soxr

    path = Path(path)
    if path.suffix.lower() not in AUDIO_SUFFIXES:
        raise SeqpipeError(
            f"unsupported format '{path.suffix}' (expected {sorted(AUDIO_SUFFIXES)})",
            where=path,
            fix="convert it to WAV/FLAC/OGG",
        )
    if not path.is_file():
        raise SeqpipeError("audio file not found", where=path)
    size = path.stat().st_size
    if size == 0:
        raise SeqpipeError("zero-length file (0 bytes)", where=path, fix="re-export or remove it")
    if path.suffix.lower() == ".wav" and (problem := _check_wav_chunks(path, size)):
        raise SeqpipeError(problem, where=path, fix="re-export or remove the file")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise SeqpipeError(
            f"cannot decode audio (corrupt or truncated?): {e}", where=path, fix="re-export or remove the file"
        ) from e
    sr, frames = int(info.samplerate), int(info.frames)
    if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        raise SeqpipeError(
            f"header declares a sample rate of {sr} Hz (plausible: {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz); "
            f"decoding would resample {frames} samples to {frames * sample_rate / max(sr, 1):.0f}",
            where=path,
            fix="fix the header's rate (e.g. re-export the file) or remove it",
        )
    if frames <= 0:
        raise SeqpipeError("file holds no audio samples", where=path, fix="remove it")
    seconds = frames / sr
    if seconds > MAX_CLIP_SECONDS:
        raise SeqpipeError(
            f"header declares {seconds / 3600:.1f} hours of audio (over {MAX_CLIP_SECONDS / 3600:.0f} h): "
            f"not a clip, or a corrupt header",
            where=path,
            fix="cut the recording into clips or remove it",
        )
    if frames * sample_rate / sr < min_samples:
        raise SeqpipeError(
            f"clip too short: {frames} sample(s) at {sr} Hz ({1000 * seconds:.2f} ms); a clip needs at "
            f"least {min_samples} samples at {sample_rate} Hz ({1000 * min_samples / sample_rate:.0f} ms, "
            f"one analysis window)",
            where=path,
            fix="remove it or pad the recording",
        )
    start, count, max_samples = 0, frames, None
    if max_seconds is not None:
        max_samples = int(max_seconds * sample_rate)
        keep = int(np.ceil(max_samples * sr / sample_rate))
        if frames > keep:
            margin = 0 if sr == sample_rate else int(np.ceil(0.05 * sr))  # resampler context either side
            centre = (frames - keep) // 2
            step = sr // math.gcd(sr, sample_rate)  # start on a sample shared by both rates' grids
            start = max(0, centre - margin) // step * step
            count = min(frames, centre + keep + margin) - start
    try:
        data, sr = sf.read(str(path), start=start, frames=count, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise SeqpipeError(
            f"cannot decode audio (corrupt or truncated?): {e}", where=path, fix="re-export or remove the file"
        ) from e
    if data.shape[0] == 0:
        raise SeqpipeError("file holds no audio samples", where=path, fix="remove it")
    wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if sr != sample_rate:
        wave = soxr.resample(wave, sr, sample_rate, quality="HQ").astype(np.float32)
    if max_samples is not None and len(wave) > max_samples:
        whole = start == 0 and count == frames
        total = len(wave) if whole else int(round(frames * sample_rate / sr))  # the full clip's length at sample_rate
        local = (total - max_samples) // 2 - start * sample_rate // sr
        local = min(max(0, local), max(0, len(wave) - max_samples))
        wave = wave[local : local + max_samples]
    if not np.isfinite(wave).all():
        raise SeqpipeError("audio holds NaN/inf samples", where=path, fix="re-export the file")
    if float(np.abs(wave).max()) < SILENCE_PEAK:
        raise SeqpipeError("all-silent clip (peak below -80 dBFS)", where=path, fix="remove it or check the recording")
    return wave, seconds


def crop(wave: np.ndarray, max_samples: int) -> np.ndarray:
    """Center crop to at most ``max_samples``."""
    if len(wave) <= max_samples:
        return wave
    start = (len(wave) - max_samples) // 2
    return wave[start : start + max_samples]


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


def _featurize_batch(paths: list[Path], fc: FeatureConfig) -> list[tuple]:
    return [_featurize(p, fc) for p in paths]


_WORKER_LIMIT: Any = None


def _init_worker() -> None:
    global _WORKER_LIMIT
    _WORKER_LIMIT = _one_blas_thread()  # threadpool_limits applies on construction, for the worker's life


def _one_blas_thread():
    """BLAS on one thread while featurizing: the mel projection is a small matrix product, and OpenBLAS's
    threads cost more than they give (2.3x slower on 2 shared cores) and oversubscribe worker processes.
    The features are bitwise the same (tests/test_audio_workers.py)."""
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:  # pragma: no cover
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def featurize_clips(paths: list[Path], fc: FeatureConfig, workers: int = 1) -> Iterator[tuple]:
    """``_featurize`` over ``paths``, in order, in this process or in ``workers`` worker processes.

    Workers are forked where the platform allows it (no re-import of torch/librosa a worker) and get
    contiguous batches of clips; results are yielded in input order as they complete.
    """
    if workers <= 1 or len(paths) < 2:
        with _one_blas_thread():  # between clips the caller only appends to lists
            for p in paths:
                yield _featurize(p, fc)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    import soundfile  # noqa: F401  (imported, and librosa's lazy modules loaded, once here: forked workers inherit them)
    import soxr  # noqa: F401

    log_mel(np.zeros(4 * fc.n_fft, np.float32), fc)  # also builds the mel filters once
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    size = max(1, min(64, len(paths) // (workers * 8)))  # small batches: balanced, and results stream back
    batches = [paths[i : i + size] for i in range(0, len(paths), size)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker) as pool:
        futures = [pool.submit(_featurize_batch, b, fc) for b in batches]
        try:
            for f in futures:
                yield from f.result()
        finally:
            for f in futures:
                f.cancel()


# -- channel and augmented renditions ---------------------------------------------------------
# a job: ("channel", clip row, seed) -> the clip through the channel-shifted test's fixed chain;
#        ("augment", clip row, seed, copy) -> one random training rendition (data/channel.py)
Job = tuple


def _render(path: Path, fc: FeatureConfig, jobs: list[Job], channel: ChannelConfig) -> list[np.ndarray]:
    """Decode one clip once (as preprocess does) and return the float16 log-mel of each job's rendition."""
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


def _render_batch(
    items: list[tuple[Path, list[Job]]], fc: FeatureConfig, channel: ChannelConfig
) -> list[list[np.ndarray]]:
    return [_render(p, fc, jobs, channel) for p, jobs in items]


def render_clips(
    items: list[tuple[Path, list[Job]]], fc: FeatureConfig, channel: ChannelConfig, workers: int = 1
) -> Iterator[list[np.ndarray]]:
    """``_render`` over (path, jobs) pairs, in order; in worker processes as ``featurize_clips`` does.
    Every draw comes from the job's own seed, so the result is the same for any number of workers."""
    if workers <= 1 or len(items) < 2:
        with _one_blas_thread():
            for p, jobs in items:
                yield _render(p, fc, jobs, channel)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    size = max(1, min(64, len(items) // (workers * 8)))
    batches = [items[i : i + size] for i in range(0, len(items), size)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker) as pool:
        futures = [pool.submit(_render_batch, b, fc, channel) for b in batches]
        try:
            for f in futures:
                yield from f.result()
        finally:
            for f in futures:
                f.cancel()


# -- splitting --------------------------------------------------------------------------------
def split_groups(groups: list[str], val_fraction: float, test_fraction: float, seed: int) -> dict[str, int]:
    """Shuffle the distinct groups (speakers) with ``seed``; the first go to test, then val, rest train."""
    uniq = sorted(set(groups))
    if len(uniq) < 3:
        raise SeqpipeError(
            f"{len(uniq)} speaker group(s): need at least 3 for train/val/test",
            where="data.source",
            fix="add speakers, or drop the speaker column so clips are split one by one",
        )
    order = np.random.default_rng(seed).permutation(len(uniq))
    n_test = max(1, round(test_fraction * len(uniq)))
    n_val = max(1, round(val_fraction * len(uniq)))
    if n_test + n_val >= len(uniq):
        raise SeqpipeError("val/test fractions leave no training speakers", where="data.val_fraction")
    code = {}
    for rank, i in enumerate(order):
        code[uniq[i]] = (
            SPLIT_CODE["test"] if rank < n_test else SPLIT_CODE["val"] if rank < n_test + n_val else SPLIT_CODE["train"]
        )
    return code


# -- preprocessing ----------------------------------------------------------------------------
def prepare_audio(
    source: str | Path,
    out_dir: str | Path,
    *,
    features: FeatureConfig = FeatureConfig(),
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    strict: bool = True,
    workers: int = 1,
    augment_copies: int = 0,
    channel: ChannelConfig = ChannelConfig(),
) -> PreparedStore:
    """Read, validate, featurize and split a labeled audio collection into a prepared store.

    ``workers`` > 1 decodes and featurizes clips in that many worker processes; the store is
    bitwise identical to the 1-worker one (same clips, order, features, skips and errors).

    Besides the clean features, val and test clips get a second rendition through the fixed ``channel``
    (array ``features_channel``, index column ``channel_offset``, -1 for train clips), so the
    channel-shifted evaluation reads stored features; and each train clip gets ``augment_copies`` random
    renditions, stored as extra train records (index column ``copy_of`` = the clean clip's row, -1 for
    clean clips). Normalization statistics come from the clean train clips only.
    """
    if isinstance(augment_copies, bool) or not isinstance(augment_copies, int) or augment_copies < 0:
        raise SeqpipeError(
            f"augment_copies must be a whole number >= 0, got {augment_copies!r}",
            fix="set data.init_args.augment_copies: 0 (none) or e.g. 2",
        )
    settings = audio_settings(
        source,
        features=features,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        strict=strict,
        augment_copies=augment_copies,
        channel=channel,
    )
    t0 = time.time()
    log = SkipLog(strict)
    listed = list_clips(source, log)
    fc = features
    max_samples = int(fc.max_seconds * fc.sample_rate)
    feats, kept, durations, cropped = [], [], [], 0
    featurized = progress(
        featurize_clips([c.path for c in listed], fc, workers), "log-mel features", len(listed), "clip"
    )
    for clip, (feat, n_samples, problem, fix) in zip(listed, featurized):
        if feat is None:  # results come back in listing order, so skips and the first strict error are as with 1 worker
            log.bad(clip.path, problem, fix or "remove the file")
            continue
        durations.append(n_samples / fc.sample_rate)
        cropped += n_samples > max_samples
        feats.append(feat)
        kept.append(clip)
    labels = sorted({c.label for c in kept})
    if len(labels) < 2:
        raise SeqpipeError(
            f"found {len(labels)} class(es) {labels}: classification needs at least two",
            where=source,
            fix="add a second label folder (or manifest label)",
        )
    groups = [c.speaker if c.speaker is not None else str(c.path) for c in kept]
    has_speakers = all(c.speaker is not None for c in kept)
    split_of = split_groups(groups, val_fraction, test_fraction, seed)
    split = np.array([split_of[g] for g in groups], dtype=np.int8)
    train_labels = sorted({c.label for c, s in zip(kept, split) if s == SPLIT_CODE["train"]})
    if train_labels != labels:
        raise SeqpipeError(
            f"classes {sorted(set(labels) - set(train_labels))} have no training clips",
            where=source,
            fix="add clips (or speakers) for them, or change data.seed / the split fractions",
        )
    class_id = {c: i for i, c in enumerate(train_labels)}
    # normalization statistics: train frames only, float64 accumulation
    tr = [f.astype(np.float64) for f, s in zip(feats, split) if s == SPLIT_CODE["train"]]
    n_frames = sum(len(f) for f in tr)
    mean = sum(f.sum(0) for f in tr) / n_frames
    std = np.sqrt(np.maximum(sum(((f - mean) ** 2).sum(0) for f in tr) / n_frames, 1e-8))

    speakers = sorted(set(groups))
    spk_id = {s: i for i, s in enumerate(speakers)}
    src = Path(source)
    fp = fingerprint(
        [c.path for c in kept],
        extra=dict(
            features=fc.to_dict(),
            val=val_fraction,
            test=test_fraction,
            seed=seed,
            strict=strict,
            labels=[c.label for c in kept],
            speakers=groups,
            augment_copies=augment_copies,
            channel=channel.to_dict(),
        ),
    )
    t1 = time.time()
    renditions = _rendition_jobs(split, seed, augment_copies)
    with StoreWriter(out_dir, domain="audio") as w:
        offsets = [w.append("features", f) for f in feats]
        lengths = [len(f) for f in feats]
        label = [class_id[c.label] for c in kept]
        group = [spk_id[g] for g in groups]
        channel_offset = np.full(len(kept), -1, dtype=np.int64)
        copy_of = [-1] * len(kept)
        copy_split, copy_label, copy_group = [], [], []
        items = [(kept[i].path, jobs) for i, jobs in renditions]
        rendered_clips = progress(
            render_clips(items, fc, channel, workers), "channel and augmented copies", len(items), "clip"
        )
        for (i, jobs), rendered in zip(renditions, rendered_clips, strict=True):
            for job, f in zip(jobs, rendered, strict=True):
                if job[0] == "channel":
                    channel_offset[i] = w.append("features_channel", f)
                    continue
                offsets.append(w.append("features", f))
                lengths.append(len(f))
                copy_of.append(i)
                copy_split.append(SPLIT_CODE["train"])
                copy_label.append(label[i])
                copy_group.append(group[i])
        w.set_index(
            offset=offsets,
            length=lengths,
            split=np.concatenate([split, np.array(copy_split, np.int8)]),
            label=np.array(label + copy_label, dtype=np.int64),
            group=np.array(group + copy_group, dtype=np.int64),
            copy_of=np.array(copy_of, dtype=np.int64),
            channel_offset=np.concatenate([channel_offset, np.full(len(copy_split), -1, np.int64)]),
        )
        spec = DataSpec(
            input="features", target="class", feature_dim=fc.n_mels, num_classes=len(labels), max_len=max(lengths)
        )
        per_split = {name: int((split == code).sum()) for name, code in SPLIT_CODE.items()}
        w.commit(
            {
                "name": Path(out_dir).name,
                "source": str(src),
                "fingerprint": fp,
                "spec": spec.to_dict(),
                "settings": settings,
                "files": [str(c.path) for c in kept],
                "groups": speakers,
                "audio": {
                    "classes": train_labels,
                    "features": fc.to_dict(),
                    "normalization": {
                        "mean": mean.tolist(),
                        "std": std.tolist(),
                        "fitted_on": "train",
                        "train_frames": int(n_frames),
                    },
                    "split_by": "speaker" if has_speakers else "clip",
                    "clips_per_split": per_split,
                    "augmented_copies": {
                        "per_train_clip": augment_copies,
                        "records": len(copy_split),
                        "seed_stream": "augment (seed, clip row, copy)",
                    },
                    "channel_test": {
                        **channel.to_dict(),
                        "splits": ["val", "test"],
                        "clips": int((channel_offset >= 0).sum()),
                        "seed_stream": "channel (seed, clip row)",
                        "chain": "reverb -> coloured noise -> telephone band -> mu-law 8-bit",
                    },
                    "speakers_per_split": {
                        name: sorted({g for g, s in zip(groups, split) if s == code})
                        for name, code in SPLIT_CODE.items()
                    }
                    if has_speakers
                    else None,
                    "clips_per_class": dict(sorted(Counter(c.label for c in kept).items())),
                    "cropped_clips": int(cropped),
                    "duration_seconds": {
                        "min": float(min(durations)),
                        "mean": float(np.mean(durations)),
                        "max": float(max(durations)),
                    },
                    "strict": strict,
                    "skipped": log.items,
                },
            }
        )
    logger.info(
        "audio: %d clips (%s), %d classes, %d skipped, %d augmented copies, %d channel clips, %.1fs (renditions %.1fs)",
        len(kept),
        per_split,
        len(labels),
        len(log.items),
        len(copy_split),
        int((channel_offset >= 0).sum()),
        time.time() - t0,
        time.time() - t1,
    )
    return PreparedStore.open(out_dir)


def _rendition_jobs(split: np.ndarray, seed: int, augment_copies: int) -> list[tuple[int, list[Job]]]:
    """(clip row, jobs) for every clip that gets renditions: val/test the channel, train its augmented copies.
    Only train rows ever get copies, so no val/test clip leaks into training through augmentation."""
    out = []
    for i, s in enumerate(split):
        if s == SPLIT_CODE["train"]:
            jobs: list[Job] = [("augment", i, seed, k) for k in range(augment_copies)]
        else:
            jobs = [("channel", i, seed)]
        if jobs:
            out.append((i, jobs))
    return out


def audio_settings(
    source: str | Path,
    *,
    features: FeatureConfig,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    strict: bool,
    augment_copies: int = 0,
    channel: ChannelConfig = ChannelConfig(),
) -> dict[str, Any]:
    """The preprocessing settings an audio store records in meta.json["settings"] (compared by fit/evaluate)."""
    return {
        "source": str(source),
        **features.to_dict(),
        "val_fraction": val_fraction,
        "test_fraction": test_fraction,
        "seed": seed,
        "strict": strict,
        "augment_copies": augment_copies,
        "channel": channel.to_dict(),
    }


# -- samples ----------------------------------------------------------------------------------
class AudioClips(Dataset):
    """Clip i of a split -> (normalized log-mel frames (T, n_mels) float32, class id)."""

    def __init__(self, store: PreparedStore, split: str, mean: np.ndarray, std: np.ndarray, channel: bool = False):
        self.rows = store.records(split)
        if channel:  # the same clips through the fixed test channel (same frame counts)
            self.features = store.arrays["features_channel"]
            self.offsets = store.index["channel_offset"][self.rows]
        else:
            self.features = store.arrays["features"]
            self.offsets = store.index["offset"][self.rows]
        self.lengths = store.index["length"][self.rows]
        self.labels = store.index["label"][self.rows]
        self.mean, self.std = mean.astype(np.float32), std.astype(np.float32)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        o, n = int(self.offsets[i]), int(self.lengths[i])
        x = (np.asarray(self.features[o : o + n], dtype=np.float32) - self.mean) / self.std
        return x, int(self.labels[i])


def collate_clips(samples: list[tuple[np.ndarray, int]]) -> dict[str, torch.Tensor]:
    inputs, lengths = pad_batch([torch.from_numpy(x) for x, _ in samples])
    return {"inputs": inputs, "lengths": lengths, "targets": torch.tensor([y for _, y in samples], dtype=torch.long)}


class SpecAugment:
    """SpecAugment frequency and time masks on one sample's (T, F) frames, drawn from its own rng.

    torchaudio's FrequencyMasking/TimeMasking semantics (a width uniform in [0, param), a start
    uniform over what is left; time masks at most ``max_time_fraction`` of the clip), applied per
    sample in the loader so the draws are a function of (seed, epoch, index) (data/sampling.py).
    Masked values become 0, the train mean after normalization.
    """

    def __init__(
        self,
        freq_mask: int = 8,
        time_mask: int = 10,
        n_freq_masks: int = 2,
        n_time_masks: int = 2,
        max_time_fraction: float = 0.2,
    ):
        self.freq_mask, self.time_mask = freq_mask, time_mask
        self.n_freq, self.n_time = n_freq_masks, n_time_masks
        self.max_time_fraction = max_time_fraction

    @staticmethod
    def _mask(x: np.ndarray, axis: int, param: float, rng: np.random.Generator) -> None:
        size = x.shape[axis]
        width = rng.uniform(0, param)
        start = rng.uniform(0, max(0.0, size - width))
        a, b = int(start), int(start + width)
        if b > a:
            (x[a:b] if axis == 0 else x[:, a:b])[...] = 0.0

    def __call__(self, sample: tuple[np.ndarray, Any], rng: np.random.Generator) -> tuple[np.ndarray, Any]:
        x, y = sample
        x = np.array(x, dtype=np.float32, copy=True)
        for _ in range(self.n_freq if self.freq_mask > 0 else 0):
            self._mask(x, 1, self.freq_mask, rng)
        time_param = min(self.time_mask, self.max_time_fraction * x.shape[0])
        for _ in range(self.n_time if self.time_mask > 0 else 0):
            self._mask(x, 0, time_param, rng)
        return x, y


class AudioDataModule(SequenceDataModule):
    """Labeled audio clips (folder of label subfolders, or a CSV manifest) as log-mel frame sequences.

    Args:
        source: a folder (<label>/<clip>.wav, Speech Commands layout) or a CSV manifest path,label[,speaker].
        prepared_dir: where the prepared store is written / read.
        sample_rate, n_mels, n_fft, hop_length, f_min, f_max: log-mel settings (see FeatureConfig).
        max_seconds: longer clips are center-cropped to this duration.
        val_fraction, test_fraction: fractions of speakers (or clips without speaker info) held out.
        strict: stop on bad input (True) or skip it and record why in meta.json (False).
        spec_augment: SpecAugment on training batches; dict of SpecAugment arguments, or null for none.
        preprocess_workers: processes that decode and featurize clips at preprocess (same store for any value).
        augment_copies: random waveform renditions (gain, speed/pitch, reverb, noise, telephone band, mu-law)
            added per train clip at preprocess, as extra training samples (0 = none).
        batch_size, num_workers, seed, rebuild: see SequenceDataModule.
    """

    def __init__(
        self,
        source: str = "data/raw/audio/digits",
        prepared_dir: str = "data/prepared/audio",
        sample_rate: int = 16000,
        n_mels: int = 40,
        n_fft: int = 400,
        hop_length: int = 160,
        f_min: float = 20.0,
        f_max: float | None = None,
        max_seconds: float = 1.5,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        strict: bool = True,
        spec_augment: dict[str, Any] | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        rebuild: bool = False,
        preprocess_workers: int = 1,
        augment_copies: int = 0,
    ):
        super().__init__(prepared_dir, batch_size, num_workers, seed, rebuild)
        self.save_hyperparameters()
        self.source = source
        self.features = FeatureConfig(sample_rate, n_mels, n_fft, hop_length, f_min, f_max, max_seconds)
        self.augment = SpecAugment(**spec_augment) if spec_augment is not None else None

    def build_store(self) -> None:
        hp = self.hparams
        prepare_audio(
            self.source,
            self.prepared_dir,
            features=self.features,
            val_fraction=hp.val_fraction,
            test_fraction=hp.test_fraction,
            seed=hp.seed,
            strict=hp.strict,
            workers=hp.preprocess_workers,
            augment_copies=hp.augment_copies,
        )

    def make_dataset(self, split: str) -> Dataset:
        norm = self.store.meta["audio"]["normalization"]
        return AudioClips(self.store, split, np.array(norm["mean"]), np.array(norm["std"]))

    def channel_dataset(self, split: str) -> AudioClips:
        """``split``'s clips (val or test) through the fixed channel of the channel-shifted test."""
        if "features_channel" not in self.store.arrays or "channel_offset" not in self.store.index:
            raise SeqpipeError(
                "this prepared store has no channel-shifted features",
                where=self.prepared_dir,
                fix="rerun `seqpipe preprocess` with this seqpipe",
            )
        norm = self.store.meta["audio"]["normalization"]
        ds = AudioClips(self.store, split, np.array(norm["mean"]), np.array(norm["std"]), channel=True)
        if len(ds) and (ds.offsets < 0).any():
            raise SeqpipeError(
                f"{int((ds.offsets < 0).sum())} {split} clip(s) lack channel-shifted features",
                where=self.prepared_dir,
                fix="rerun `seqpipe preprocess`",
            )
        return ds

    def collate(self, samples: list[tuple[np.ndarray, int]]) -> dict[str, torch.Tensor]:
        return collate_clips(samples)

    def sample_augment(self) -> SpecAugment | None:
        return self.augment

    def data_info(self) -> dict[str, Any]:
        """What predict needs (classes, feature settings, train normalization), not the file lists."""
        a = self.meta["audio"]
        return {
            "domain": "audio",
            "classes": a["classes"],
            "features": a["features"],
            "normalization": a["normalization"],
        }

    @property
    def classes(self) -> list[str]:
        return self.meta["audio"]["classes"]

    def preprocessing_settings(self) -> dict[str, Any]:
        """The settings this config would record in meta.json["settings"] (see store.check_settings)."""
        hp = self.hparams
        return audio_settings(
            self.source,
            features=self.features,
            val_fraction=hp.val_fraction,
            test_fraction=hp.test_fraction,
            seed=hp.seed,
            strict=hp.strict,
            augment_copies=hp.augment_copies,
        )
