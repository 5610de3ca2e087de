"""Audio preprocessing: a clip collection -> split, normalized, featurized prepared store (``prepare_audio``).

Clips keep their own length, up to ``max_seconds`` (longer ones are center-cropped; the count is in
meta.json). Splits are disjoint by speaker (the test split's voices are never heard in training);
without speaker information every clip is its own group. Classes and the per-mel-band mean and
standard deviation are fitted on the train split only and live in meta.json.

Real-recording effects (data/channel.py). Val and test clips are also stored through a fixed, seeded
"real channel" (reverb, coloured noise, telephone band, mu-law) for the channel-shifted test
(array ``features_channel``); with ``augment_copies: K`` each train clip gets K random renditions
through the same family of effects (other seeds) as extra training records. Both are computed from the
decoded waveform, like the clean features (data/audio_features.py).

Bad input: ``strict=True`` (default) stops with a SeqpipeError naming the file and the problem;
``strict=False`` skips it and records path and reason in meta.json["audio"]["skipped"] and the
preprocess log. A dataset with fewer than two classes is refused in both modes.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from seqpipe.data.spec import DataSpec
from seqpipe.data.store import SPLIT_CODE, PreparedStore, StoreWriter, fingerprint
from seqpipe.domains.audio.channel import ChannelConfig
from seqpipe.domains.audio.checks import check_finite
from seqpipe.domains.audio.features import FeatureConfig, Job, featurize_clips, render_clips
from seqpipe.domains.audio.source import SkipLog, list_clips
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
    for clip, (feat, n_samples, problem, fix) in zip(listed, featurized, strict=True):
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
    train_labels = sorted({c.label for c, s in zip(kept, split, strict=True) if s == SPLIT_CODE["train"]})
    if train_labels != labels:
        raise SeqpipeError(
            f"classes {sorted(set(labels) - set(train_labels))} have no training clips",
            where=source,
            fix="add clips (or speakers) for them, or change data.seed / the split fractions",
        )
    class_id = {c: i for i, c in enumerate(train_labels)}
    # normalization statistics: train frames only, float64 accumulation
    tr = [f.astype(np.float64) for f, s in zip(feats, split, strict=True) if s == SPLIT_CODE["train"]]
    n_frames = sum(len(f) for f in tr)
    mean = sum(f.sum(0) for f in tr) / n_frames
    std = np.sqrt(np.maximum(sum(((f - mean) ** 2).sum(0) for f in tr) / n_frames, 1e-8))
    check_finite(feats, [c.path for c in kept], mean, std)

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
                        name: sorted({g for g, s in zip(groups, split, strict=True) if s == code})
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
