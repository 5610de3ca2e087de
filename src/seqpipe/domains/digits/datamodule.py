"""Spoken digit strings: a manifest of WAV files with their digits -> log-mel frames -> token targets.

Reading. ``source`` is a CSV manifest with columns ``path,text,speaker`` (paths relative to the
manifest; ``text`` the spoken digits, e.g. 417) or a folder holding ``manifest.csv`` -- what
``python -m seqpipe.domains.digits.source`` writes. Audio decoding, resampling and log-mel
features are the audio domain's (seqpipe.domains.audio.source.load_audio, seqpipe.domains.audio.features.log_mel),
so a clip is featurized exactly as a single-digit clip is.

Targets. Output ids: PAD=0, BOS=1, EOS=2, digit d -> d + 3 (13 ids); a sample's targets are its
digits then EOS (the seq2seq model's convention, seqpipe.models.seq2seq).

Splits are disjoint by speaker (voice): test voices are never heard in training. Per-mel-band
normalization is fitted on train frames only and kept in meta.json.

Bad input -- a missing or undecodable file, a text that is not 1..``max_digits`` digits, a row
without a speaker -- stops with a SeqpipeError naming the manifest row and file (``strict=True``,
default), or is skipped and listed in meta.json["digits"]["skipped"] (``strict=False``).
"""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from seqpipe.data.module import SequenceDataModule
from seqpipe.data.spec import EOS, PAD, DataSpec
from seqpipe.data.store import SPLIT_CODE, PreparedStore, StoreWriter, fingerprint
from seqpipe.data.windows import pad_batch
from seqpipe.domains.audio.datamodule import SpecAugment
from seqpipe.domains.audio.features import FeatureConfig, log_mel
from seqpipe.domains.audio.prepare import split_groups
from seqpipe.domains.audio.source import SkipLog, crop, load_audio
from seqpipe.errors import SeqpipeError

logger = logging.getLogger(__name__)

ALPHABET = "0123456789"
OFFSET = 3  # digit d has output id d + OFFSET (after PAD, BOS, EOS)
NUM_IDS = OFFSET + len(ALPHABET)


def encode_digits(text: str) -> list[int]:
    return [OFFSET + ALPHABET.index(c) for c in text]


def decode_ids(ids: list[int]) -> str:
    return "".join(ALPHABET[i - OFFSET] for i in ids if OFFSET <= i < NUM_IDS)


def read_manifest(source: str | Path, log: SkipLog, max_digits: int) -> list[tuple[Path, str, str]]:
    """(file, digits, speaker) for every good row of the manifest."""
    path = Path(source)
    if path.is_dir():
        path = path / "manifest.csv"
    if not path.is_file():
        raise SeqpipeError(
            "digit-string manifest not found",
            where=path,
            fix="pass a manifest.csv (path,text,speaker) or the folder holding one "
            "(python -m seqpipe.domains.digits.source writes both)",
        )
    rows = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        cols = set(reader.fieldnames or [])
        if not {"path", "text", "speaker"} <= cols:
            raise SeqpipeError(
                f"manifest columns are {sorted(cols)}, need path,text,speaker",
                where=path,
                fix="add a header row: path,text,speaker",
            )
        for i, row in enumerate(reader, start=2):
            p = Path(row["path"] or "")
            p = p if p.is_absolute() else path.parent / p
            text = (row["text"] or "").strip()
            where = f"{path}:{i} ({row['path']})"
            if not text or not text.isdigit() or not text.isascii():
                log.bad(where, f"text {text!r} is not a string of digits 0-9", "write the spoken digits, e.g. 417")
            elif len(text) > max_digits:
                log.bad(
                    where,
                    f"text {text!r} has {len(text)} digits, more than max_digits={max_digits}",
                    "raise data.max_digits or drop the row",
                )
            elif not (row.get("speaker") or "").strip():
                log.bad(where, "row has no speaker (splits are by speaker)", "fill the speaker column")
            elif not p.is_file():
                log.bad(where, "file in manifest does not exist", "fix the path or remove the row")
            else:
                rows.append((p, text, row["speaker"].strip()))
    return rows


def prepare_digits(
    source: str | Path,
    out_dir: str | Path,
    *,
    features: FeatureConfig = FeatureConfig(max_seconds=6.0),
    max_digits: int = 7,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    strict: bool = True,
) -> PreparedStore:
    settings = digits_settings(
        source,
        features=features,
        max_digits=max_digits,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        strict=strict,
    )
    t0 = time.time()
    log = SkipLog(strict)
    listed = read_manifest(source, log, max_digits)
    fc = features
    max_samples = int(fc.max_seconds * fc.sample_rate)
    feats, kept = [], []
    for p, text, spk in listed:
        try:
            wave = load_audio(p, fc.sample_rate)
        except SeqpipeError as e:
            log.bad(p, e.problem, e.fix or "remove the row")
            continue
        if len(wave) > max_samples:  # a cut utterance would no longer say its digits
            log.bad(
                p,
                f"{len(wave) / fc.sample_rate:.1f} s long, over max_seconds={fc.max_seconds}",
                "raise data.max_seconds or drop the row",
            )
            continue
        feats.append(log_mel(crop(wave, max_samples), fc).astype(np.float16))
        kept.append((p, text, spk))
    if len(kept) < 3:
        raise SeqpipeError(f"only {len(kept)} usable utterances", where=source, fix="generate or list more")
    groups = [spk for _, _, spk in kept]
    split_of = split_groups(groups, val_fraction, test_fraction, seed)
    split = np.array([split_of[g] for g in groups], dtype=np.int8)
    tr = [f.astype(np.float64) for f, s in zip(feats, split, strict=True) if s == SPLIT_CODE["train"]]
    n_frames = sum(len(f) for f in tr)
    mean = sum(f.sum(0) for f in tr) / n_frames
    std = np.sqrt(np.maximum(sum(((f - mean) ** 2).sum(0) for f in tr) / n_frames, 1e-8))
    speakers = sorted(set(groups))
    fp = fingerprint(
        [p for p, _, _ in kept],
        extra=dict(
            features=fc.to_dict(),
            val=val_fraction,
            test=test_fraction,
            seed=seed,
            max_digits=max_digits,
            strict=strict,
            texts=[t for _, t, _ in kept],
            speakers=groups,
        ),
    )
    with StoreWriter(out_dir, domain="digits") as w:
        offsets = [w.append("features", f) for f in feats]
        t_off = [w.append("targets", np.array(encode_digits(t), dtype=np.int8)) for _, t, _ in kept]
        w.set_index(
            offset=offsets,
            length=[len(f) for f in feats],
            split=split,
            target_offset=np.array(t_off, np.int64),
            target_length=np.array([len(t) for _, t, _ in kept], np.int64),
            group=np.array([speakers.index(g) for g in groups], np.int64),
        )
        spec = DataSpec(
            input="features",
            target="sequence",
            feature_dim=fc.n_mels,
            num_classes=NUM_IDS,
            max_len=max(len(f) for f in feats),
        )
        per_split = {name: int((split == code).sum()) for name, code in SPLIT_CODE.items()}
        w.commit(
            {
                "name": Path(out_dir).name,
                "source": str(source),
                "fingerprint": fp,
                "spec": spec.to_dict(),
                "settings": settings,
                "files": [str(p) for p, _, _ in kept],
                "groups": speakers,
                "digits": {
                    "alphabet": ALPHABET,
                    "id_offset": OFFSET,
                    "max_digits": max_digits,
                    "features": fc.to_dict(),
                    "normalization": {
                        "mean": mean.tolist(),
                        "std": std.tolist(),
                        "fitted_on": "train",
                        "train_frames": int(n_frames),
                    },
                    "utterances_per_split": per_split,
                    "speakers_per_split": {
                        name: sorted({g for g, s in zip(groups, split, strict=True) if s == code})
                        for name, code in SPLIT_CODE.items()
                    },
                    "digits_per_split": {
                        name: int(sum(len(t) for (_, t, _), s in zip(kept, split, strict=True) if s == code))
                        for name, code in SPLIT_CODE.items()
                    },
                    "skipped": log.items,
                },
            }
        )
    logger.info(
        "digits: %d utterances (%s), %d speakers, %d skipped, %.1fs",
        len(kept),
        per_split,
        len(speakers),
        len(log.items),
        time.time() - t0,
    )
    return PreparedStore.open(out_dir)


class DigitUtterances(Dataset):
    """Utterance i of a split -> (normalized log-mel (T, n_mels) float32, target ids + EOS)."""

    def __init__(self, store: PreparedStore, split: str, mean: np.ndarray, std: np.ndarray):
        self.rows = store.records(split)
        self.features, self.targets = store.arrays["features"], store.arrays["targets"]
        idx = store.index
        self.offsets, self.lengths = idx["offset"][self.rows], idx["length"][self.rows]
        self.t_off, self.t_len = idx["target_offset"][self.rows], idx["target_length"][self.rows]
        self.mean, self.std = mean.astype(np.float32), std.astype(np.float32)

    def __len__(self) -> int:
        return len(self.rows)

    def text(self, i: int) -> str:
        o, n = int(self.t_off[i]), int(self.t_len[i])
        return decode_ids(np.asarray(self.targets[o : o + n]).tolist())

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        o, n = int(self.offsets[i]), int(self.lengths[i])
        x = (np.asarray(self.features[o : o + n], dtype=np.float32) - self.mean) / self.std
        to, tn = int(self.t_off[i]), int(self.t_len[i])
        y = np.append(np.asarray(self.targets[to : to + tn], dtype=np.int64), EOS)
        return x, y


def collate_utterances(samples: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, torch.Tensor]:
    inputs, lengths = pad_batch([torch.from_numpy(x) for x, _ in samples])
    targets, _ = pad_batch([torch.from_numpy(y) for _, y in samples], pad_value=PAD)
    return {"inputs": inputs, "lengths": lengths, "targets": targets}


def digits_settings(source: str | Path, *, features: FeatureConfig, **kwargs: Any) -> dict[str, Any]:
    """The preprocessing settings a digits store records in meta.json["settings"] (compared by fit/evaluate)."""
    return {"source": str(source), **features.to_dict(), **kwargs}


class DigitStringsDataModule(SequenceDataModule):
    """Spoken digit strings (manifest of WAVs + digits) as log-mel frames -> digit token sequences.

    Args:
        source: manifest.csv (path,text,speaker) or the folder holding it.
        prepared_dir: where the prepared store is written / read.
        sample_rate, n_mels, n_fft, hop_length, f_min, f_max: log-mel settings (the audio domain's).
        max_seconds: longer utterances are bad input (cropping would cut digits off).
        max_digits: longest digit string accepted (longer rows are bad input).
        val_fraction, test_fraction: fractions of speakers held out.
        strict: stop on bad input (True) or skip it and record why in meta.json (False).
        spec_augment: SpecAugment arguments for training batches, or null.
        batch_size, num_workers, seed, rebuild: see SequenceDataModule.
    """

    def __init__(
        self,
        source: str = "data/raw/digits",
        prepared_dir: str = "data/prepared/digits",
        sample_rate: int = 16000,
        n_mels: int = 40,
        n_fft: int = 400,
        hop_length: int = 160,
        f_min: float = 20.0,
        f_max: float | None = None,
        max_seconds: float = 6.0,
        max_digits: int = 7,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        strict: bool = True,
        spec_augment: dict[str, Any] | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
        rebuild: bool = False,
    ):
        super().__init__(prepared_dir, batch_size, num_workers, seed, rebuild)
        self.save_hyperparameters()
        self.source = source
        self.features = FeatureConfig(sample_rate, n_mels, n_fft, hop_length, f_min, f_max, max_seconds)
        self.augment = SpecAugment(**spec_augment) if spec_augment is not None else None

    def _preprocess_args(self) -> dict[str, Any]:
        """The keyword arguments of prepare_digits / digits_settings this config gives (besides the source)."""
        hp = self.hparams
        return dict(
            features=self.features,
            max_digits=hp.max_digits,
            val_fraction=hp.val_fraction,
            test_fraction=hp.test_fraction,
            seed=hp.seed,
            strict=hp.strict,
        )

    def build_store(self) -> None:
        prepare_digits(self.source, self.prepared_dir, **self._preprocess_args())

    def preprocessing_settings(self) -> dict[str, Any]:
        """The settings this config would record in meta.json["settings"] (see store.check_settings)."""
        return digits_settings(self.source, **self._preprocess_args())

    def make_dataset(self, split: str) -> Dataset:
        norm = self.store.meta["digits"]["normalization"]
        return DigitUtterances(self.store, split, np.array(norm["mean"]), np.array(norm["std"]))

    def collate(self, samples: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, torch.Tensor]:
        return collate_utterances(samples)

    def sample_augment(self) -> SpecAugment | None:
        return self.augment

    def data_info(self) -> dict[str, Any]:
        d = self.meta["digits"]
        return {
            "domain": "digits",
            **{k: d[k] for k in ("alphabet", "id_offset", "max_digits", "features", "normalization")},
        }
