"""Audio preprocessing: a clip collection -> split, normalized, featurized prepared store (``prepare_audio``).

Clips keep their own length, up to ``max_seconds`` (longer ones are center-cropped; the count is in
meta.json). Splits are disjoint by speaker (the test split's voices are never heard in training);
without speaker information every clip is its own group. Classes and the per-mel-band mean and
standard deviation are fitted on the train split only and live in meta.json.

Real-recording effects (seqpipe.domains.audio.channel). Val and test clips are also stored through a fixed, seeded
"real channel" (reverb, coloured noise, telephone band, mu-law) for the channel-shifted test
(array ``features_channel``); with ``augment_copies: K`` each train clip gets K random renditions
through the same family of effects (other seeds) as extra training records. Both are computed from the
decoded waveform, like the clean features (seqpipe.domains.audio.features).

Bad input: ``strict=True`` (default) stops with a SeqpipeError naming the file and the problem;
``strict=False`` skips it and records path and reason in meta.json["audio"]["skipped"] and the
preprocess log. A dataset with fewer than two classes is refused in both modes.
The settings are ``AudioSettings`` (seqpipe.domains.audio.settings), declared once there.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from seqpipe.data.spec import DataSpec
from seqpipe.data.store import SPLIT_CODE, PreparedStore, StoreWriter, fingerprint
from seqpipe.domains.audio.checks import check_finite
from seqpipe.domains.audio.features import FeatureConfig, Job, featurize_clips, render_clips
from seqpipe.domains.audio.settings import AudioSettings
from seqpipe.domains.audio.source import Clip, SkipLog, list_clips
from seqpipe.errors import SeqpipeError
from seqpipe.progress import progress

logger = logging.getLogger(__name__)


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
@dataclass
class _Clips:
    """The clips that decoded, with their features and what the store records about them."""

    kept: list[Clip]
    feats: list[np.ndarray]
    durations: list[float]  # seconds, before cropping
    cropped: int
    groups: list[str] = field(default_factory=list)  # speaker, or the clip's path without speaker information
    split: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    classes: list[str] = field(default_factory=list)  # fitted on the train split

    @property
    def has_speakers(self) -> bool:
        return all(c.speaker is not None for c in self.kept)


def prepare_audio(
    source: str | Path,
    out_dir: str | Path,
    settings: AudioSettings | None = None,
    *,
    workers: int = 1,
    **changes: Any,
) -> PreparedStore:
    """Read, validate, featurize and split a labeled audio collection into a prepared store.

    ``settings`` (default ``AudioSettings()``) with ``changes`` (any of its fields by name, e.g.
    ``val_fraction=0.2``) say how. ``workers`` > 1 decodes, featurizes and renders clips in that many worker
    processes; the store is bitwise identical to the 1-worker one (same clips, order, features, skips and errors).
    Val/test clips also get the fixed channel rendition, train clips ``augment_copies`` random ones (``_write``).
    """
    s = replace(settings or AudioSettings(), **changes)
    s.check()
    t0 = time.time()
    log = SkipLog(s.strict)
    clips = _featurize(list_clips(source, log), s.features, log, workers)
    _split(clips, source, s)
    normalization = train_normalization(clips.feats, clips.split)
    check_finite(clips.feats, [c.path for c in clips.kept], normalization)
    fp = fingerprint(
        [c.path for c in clips.kept],
        extra=s.fingerprint_extra(labels=[c.label for c in clips.kept], speakers=clips.groups),
    )
    t1 = time.time()
    with StoreWriter(out_dir, domain="audio") as w:
        lengths, channel_offset = _write(w, clips, s, workers)
        copies = len(lengths) - len(clips.kept)
        spec = DataSpec(
            input="features",
            target="class",
            feature_dim=s.features.n_mels,
            num_classes=len(clips.classes),
            max_len=max(lengths),
        )
        audio = {
            "classes": clips.classes,
            "features": s.features.to_dict(),
            "normalization": normalization,
            **_summary(clips, s, copies, channel_offset),
            "strict": s.strict,
            "skipped": log.items,
        }
        w.commit(
            {
                "name": Path(out_dir).name,
                "source": str(Path(source)),
                "fingerprint": fp,
                "spec": spec.to_dict(),
                "settings": s.recorded(source),
                "files": [str(c.path) for c in clips.kept],
                "groups": sorted(set(clips.groups)),
                "audio": audio,
            }
        )
    logger.info(
        "audio: %d clips (%s), %d classes, %d skipped, %d augmented copies, %d channel clips, %.1fs (renditions %.1fs)",
        len(clips.kept),
        audio["clips_per_split"],
        len(clips.classes),
        len(log.items),
        copies,
        int((channel_offset >= 0).sum()),
        time.time() - t0,
        time.time() - t1,
    )
    return PreparedStore.open(out_dir)


def _featurize(listed: list[Clip], fc: FeatureConfig, log: SkipLog, workers: int) -> _Clips:
    """Log-mel features of every listed clip; one that does not decode is bad input (skipped or an error)."""
    max_samples = int(fc.max_seconds * fc.sample_rate)
    clips = _Clips([], [], [], 0)
    featurized = progress(
        featurize_clips([c.path for c in listed], fc, workers), "log-mel features", len(listed), "clip"
    )
    for clip, (feat, n_samples, problem, fix) in zip(listed, featurized, strict=True):
        if feat is None:  # results come back in listing order, so skips and the first strict error are as with 1 worker
            log.bad(clip.path, problem, fix or "remove the file")
            continue
        clips.durations.append(n_samples / fc.sample_rate)
        clips.cropped += n_samples > max_samples
        clips.feats.append(feat)
        clips.kept.append(clip)
    return clips


def _split(clips: _Clips, source: str | Path, s: AudioSettings) -> None:
    """Speaker groups, the split of each clip and the classes (every class needs training clips)."""
    labels = sorted({c.label for c in clips.kept})
    if len(labels) < 2:
        raise SeqpipeError(
            f"found {len(labels)} class(es) {labels}: classification needs at least two",
            where=source,
            fix="add a second label folder (or manifest label)",
        )
    clips.groups = [c.speaker if c.speaker is not None else str(c.path) for c in clips.kept]
    split_of = split_groups(clips.groups, s.val_fraction, s.test_fraction, s.seed)
    clips.split = np.array([split_of[g] for g in clips.groups], dtype=np.int8)
    train = SPLIT_CODE["train"]
    clips.classes = sorted({c.label for c, code in zip(clips.kept, clips.split, strict=True) if code == train})
    if clips.classes != labels:
        raise SeqpipeError(
            f"classes {sorted(set(labels) - set(clips.classes))} have no training clips",
            where=source,
            fix="add clips (or speakers) for them, or change data.seed / the split fractions",
        )


def train_normalization(feats: list[np.ndarray], split: np.ndarray) -> dict[str, Any]:
    """Per-mel-band mean and std of the train split's frames (float64 accumulation), as meta.json keeps them."""
    tr = [f.astype(np.float64) for f, s in zip(feats, split, strict=True) if s == SPLIT_CODE["train"]]
    n_frames = sum(len(f) for f in tr)
    mean = sum(f.sum(0) for f in tr) / n_frames
    std = np.sqrt(np.maximum(sum(((f - mean) ** 2).sum(0) for f in tr) / n_frames, 1e-8))
    return {"mean": mean.tolist(), "std": std.tolist(), "fitted_on": "train", "train_frames": int(n_frames)}


def _write(w: StoreWriter, clips: _Clips, s: AudioSettings, workers: int) -> tuple[list[int], np.ndarray]:
    """Append the clean features and the renditions, and set the index; returns (every record's frame count,
    each clean clip's channel_offset).

    Val and test clips get a rendition through the fixed ``channel`` (array ``features_channel``, index column
    ``channel_offset``, -1 for train clips), so the channel-shifted evaluation reads stored features; each train
    clip gets ``augment_copies`` random renditions, stored as extra train records (index column ``copy_of`` = the
    clean clip's row, -1 for clean clips). Normalization statistics come from the clean train clips only.
    """
    n = len(clips.kept)
    class_id = {c: i for i, c in enumerate(clips.classes)}
    spk_id = {g: i for i, g in enumerate(sorted(set(clips.groups)))}
    offsets = [w.append("features", f) for f in clips.feats]
    lengths = [len(f) for f in clips.feats]
    label = [class_id[c.label] for c in clips.kept]
    group = [spk_id[g] for g in clips.groups]
    channel_offset = np.full(n, -1, dtype=np.int64)
    copy_of = [-1] * n
    renditions = _rendition_jobs(clips.split, s.seed, s.augment_copies)
    items = [(clips.kept[i].path, jobs) for i, jobs in renditions]
    rendered_clips = progress(
        render_clips(items, s.features, s.channel, workers), "channel and augmented copies", len(items), "clip"
    )
    for (i, jobs), rendered in zip(renditions, rendered_clips, strict=True):
        for job, f in zip(jobs, rendered, strict=True):
            if job[0] == "channel":
                channel_offset[i] = w.append("features_channel", f)
                continue
            offsets.append(w.append("features", f))
            lengths.append(len(f))
            copy_of.append(i)
    copies = copy_of[n:]
    w.set_index(
        offset=offsets,
        length=lengths,
        split=np.concatenate([clips.split, np.array([SPLIT_CODE["train"]] * len(copies), np.int8)]),
        label=np.array(label + [label[i] for i in copies], dtype=np.int64),
        group=np.array(group + [group[i] for i in copies], dtype=np.int64),
        copy_of=np.array(copy_of, dtype=np.int64),
        channel_offset=np.concatenate([channel_offset, np.full(len(copies), -1, np.int64)]),
    )
    return lengths, channel_offset


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


def _summary(clips: _Clips, s: AudioSettings, copies: int, channel_offset: np.ndarray) -> dict[str, Any]:
    """meta.json["audio"]'s account of the splits, renditions, classes and durations."""
    split, groups = clips.split, clips.groups
    return {
        "split_by": "speaker" if clips.has_speakers else "clip",
        "clips_per_split": {name: int((split == code).sum()) for name, code in SPLIT_CODE.items()},
        "augmented_copies": {
            "per_train_clip": s.augment_copies,
            "records": copies,
            "seed_stream": "augment (seed, clip row, copy)",
        },
        "channel_test": {
            **s.channel.to_dict(),
            "splits": ["val", "test"],
            "clips": int((channel_offset >= 0).sum()),
            "seed_stream": "channel (seed, clip row)",
            "chain": "reverb -> coloured noise -> telephone band -> mu-law 8-bit",
        },
        "speakers_per_split": {
            name: sorted({g for g, code2 in zip(groups, split, strict=True) if code2 == code})
            for name, code in SPLIT_CODE.items()
        }
        if clips.has_speakers
        else None,
        "clips_per_class": dict(sorted(Counter(c.label for c in clips.kept).items())),
        "cropped_clips": int(clips.cropped),
        "duration_seconds": {
            "min": float(min(clips.durations)),
            "mean": float(np.mean(clips.durations)),
            "max": float(max(clips.durations)),
        },
    }


def audio_settings(source: str | Path, **settings: Any) -> dict[str, Any]:
    """The preprocessing settings an audio store records in meta.json["settings"] (``AudioSettings`` fields)."""
    return AudioSettings(**settings).recorded(source)
