"""Audio: labeled clips as normalized log-mel frame sequences -- the Dataset, batches, SpecAugment, datamodule.

The pieces before this one: reading and decoding clips (seqpipe.domains.audio.source), log-mel features in
worker processes (seqpipe.domains.audio.features), and the preprocess that splits, fits statistics and writes
the prepared store (seqpipe.domains.audio.prepare), with its settings declared once in
seqpipe.domains.audio.settings.

Variable length policy. Clips keep their own length, up to ``max_seconds`` (longer ones are
center-cropped); a batch pads to its longest clip and carries ``lengths``, and every model masks
(packs) the padded frames.

Normalization. Per-mel-band mean and standard deviation come from the train split only and live in
meta.json; clips are normalized when a batch is built. SpecAugment (torchaudio FrequencyMasking/
TimeMasking semantics) is applied to training samples only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from seqpipe.data.module import SequenceDataModule
from seqpipe.data.store import PreparedStore
from seqpipe.data.windows import pad_batch
from seqpipe.domains.audio.features import FeatureConfig, clip_features, log_mel
from seqpipe.domains.audio.prepare import audio_settings, prepare_audio
from seqpipe.domains.audio.settings import AudioSettings
from seqpipe.domains.audio.source import load_audio
from seqpipe.errors import SeqpipeError

# what users imported from here before the reader, features and preprocess got their own modules
__all__ = [
    "AudioClips",
    "AudioSettings",
    "AudioDataModule",
    "FeatureConfig",
    "SpecAugment",
    "audio_settings",
    "clip_features",
    "collate_clips",
    "load_audio",
    "log_mel",
    "prepare_audio",
]


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
        self.settings = AudioSettings.from_args(self.hparams)  # the preprocessing arguments, by name
        self.features = self.settings.features
        self.augment = SpecAugment(**spec_augment) if spec_augment is not None else None

    def build_store(self) -> None:
        prepare_audio(self.source, self.prepared_dir, self.settings, workers=self.hparams.preprocess_workers)

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
        return self.settings.recorded(self.source)
