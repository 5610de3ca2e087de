"""BeatDataModule: heartbeats as sequences of one feature (the standardized amplitude) with one class each.

The two hooks a seqpipe datamodule supplies: ``build_store`` (the torch-free builder in prepare.py) and
``make_dataset`` (samples sliced from the memory-mapped store). The base class does the rest: loaders,
seeded training order, the DataSpec (``input="features"``, ``target="class"``) read from the store.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ecg_beats.prepare import beat_settings, build_beat_store
from seqpipe.data.module import SequenceDataModule


class BeatSamples(Dataset):
    """One sample a beat: (samples as float32, class id), a slice of the store's flat signal."""

    def __init__(self, signal: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, labels: np.ndarray):
        self.signal, self.offsets, self.lengths, self.labels = signal, offsets, lengths, labels

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        o, n = int(self.offsets[i]), int(self.lengths[i])
        return np.asarray(self.signal[o : o + n]), int(self.labels[i])


def collate_beats(samples: list[tuple[np.ndarray, int]]) -> dict[str, torch.Tensor]:
    """(B, T, 1) inputs and (B,) class targets: the batch every seqpipe class model reads."""
    return {
        "inputs": torch.from_numpy(np.stack([s for s, _ in samples]))[:, :, None],
        "targets": torch.tensor([y for _, y in samples], dtype=torch.long),
    }


class BeatDataModule(SequenceDataModule):
    """Synthetic (or your own) heartbeats in a ``beats.npz``: ``signal`` (beats, samples), ``label``.

    Args:
        source: the beats file (``python -m ecg_beats.synth`` writes one).
        prepared_dir: where the prepared store lives.
        val_fraction, test_fraction: stratified split fractions, seeded by ``seed``.
        batch_size, num_workers, seed, rebuild: see SequenceDataModule.
    """

    def __init__(
        self,
        source: str = "data/raw/ecg/beats.npz",
        prepared_dir: str = "data/prepared/ecg",
        val_fraction: float = 0.15,
        test_fraction: float = 0.2,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
        rebuild: bool = False,
    ):
        super().__init__(prepared_dir, batch_size, num_workers, seed, rebuild)
        self.save_hyperparameters()

    def build_store(self) -> None:
        hp = self.hparams
        build_beat_store(hp.source, self.prepared_dir, hp.val_fraction, hp.test_fraction, seed=hp.seed, rebuild=True)

    def make_dataset(self, split: str) -> Dataset:
        rows = self.store.records(split)
        ix = self.store.index
        return BeatSamples(self.store.arrays["signal"], ix["offset"][rows], ix["length"][rows], ix["label"][rows])

    def collate(self, samples: list[tuple[np.ndarray, int]]) -> dict[str, torch.Tensor]:
        return collate_beats(samples)

    def preprocessing_settings(self) -> dict[str, Any]:
        hp = self.hparams
        return beat_settings(hp.source, hp.val_fraction, hp.test_fraction, hp.seed)

    def records(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(beats (n, samples) as stored, class ids) of one split: what the baselines and evaluate read."""
        ds = self.datasets[split]
        return np.stack([ds[i][0] for i in range(len(ds))]), np.asarray(ds.labels, dtype=np.int64)

    @property
    def classes(self) -> list[str]:
        return list(self.meta["ecg_beats"]["classes"])
