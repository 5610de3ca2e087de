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

The preprocess is seqpipe.domains.digits.prepare; its settings are ``DigitsSettings``
(seqpipe.domains.digits.settings), declared once there and built from this datamodule's arguments.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from seqpipe.data.module import SequenceDataModule
from seqpipe.data.spec import EOS, PAD
from seqpipe.data.store import PreparedStore
from seqpipe.data.windows import pad_batch
from seqpipe.domains.audio.datamodule import SpecAugment
from seqpipe.domains.digits.prepare import (
    ALPHABET,
    NUM_IDS,
    OFFSET,
    decode_ids,
    digits_settings,
    encode_digits,
    prepare_digits,
    read_manifest,
)
from seqpipe.domains.digits.settings import DigitsSettings

# what users imported from here before the preprocess and its settings got their own modules
__all__ = [
    "ALPHABET",
    "NUM_IDS",
    "OFFSET",
    "DigitStringsDataModule",
    "DigitUtterances",
    "DigitsSettings",
    "collate_utterances",
    "decode_ids",
    "digits_settings",
    "encode_digits",
    "prepare_digits",
    "read_manifest",
]


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
        self.settings = DigitsSettings.from_args(self.hparams)  # the preprocessing arguments, by name
        self.features = self.settings.features
        self.augment = SpecAugment(**spec_augment) if spec_augment is not None else None

    def build_store(self) -> None:
        prepare_digits(self.source, self.prepared_dir, self.settings)

    def preprocessing_settings(self) -> dict[str, Any]:
        """The settings this config would record in meta.json["settings"] (see store.check_settings)."""
        return self.settings.recorded(self.source)

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
