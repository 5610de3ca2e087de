"""SequenceDataModule: the LightningDataModule every domain shares.

A domain subclass supplies two things: ``build_store()`` (raw source -> prepared store, run once
in ``prepare_data``) and ``make_dataset(split)`` (samples by index arithmetic over the store).
Everything else -- opening the memory-mapped store per process, loaders, the DataSpec -- is here.

Training order and every random draw of a training sample are a pure function of (seed, epoch,
index) (data/sampling.py): the same config and seed give the same batches, with or without
DataLoader workers. A domain adds per-sample augmentation by returning it from ``sample_augment()``.

DDP: ``prepare_data`` runs on one process per node; ``setup`` opens the store (a memory map, not a
copy) in every process; Lightning swaps in a DistributedSampler so each rank gets distinct samples.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from seqpipe.data.sampling import EpochSampler, SeededSamples
from seqpipe.data.spec import DataSpec
from seqpipe.data.store import PreparedStore, check_not_inside_source, check_settings
from seqpipe.errors import SeqpipeError


class SequenceDataModule(L.LightningDataModule):
    """Base datamodule over a prepared store.

    Args:
        prepared_dir: where the prepared store lives (built there by ``prepare_data`` if missing).
        batch_size: samples per batch, per device (the global batch is this x devices x nodes).
        num_workers: DataLoader worker processes (0 = load in the training process).
        seed: seeds the split assignment, the training order and every per-sample random draw.
        rebuild: rebuild the store even if one exists (the preprocess stage sets this).
    """

    def __init__(
        self,
        prepared_dir: str | Path,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        rebuild: bool = False,
    ):
        super().__init__()
        if batch_size < 1:
            raise SeqpipeError(f"batch_size must be >= 1, got {batch_size}", fix="set data.batch_size")
        self.prepared_dir = Path(prepared_dir)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.rebuild = rebuild
        self.store: PreparedStore | None = None
        self.datasets: dict[str, Dataset] = {}

    # -- domain hooks -------------------------------------------------------------------------
    def build_store(self) -> None:
        """Read the raw source, validate, encode, and write ``self.prepared_dir`` atomically."""
        raise SeqpipeError(
            f"{type(self).__name__} must define this hook", fix="subclass SequenceDataModule and implement it"
        )

    def make_dataset(self, split: str) -> Dataset:
        raise SeqpipeError(
            f"{type(self).__name__} must define this hook", fix="subclass SequenceDataModule and implement it"
        )

    def collate(self, samples: list[Any]) -> Any:
        return torch.utils.data.default_collate(samples)

    def sample_augment(self) -> Callable[[Any, Any], Any] | None:
        """Training-time augmentation ``(sample, rng) -> sample``, or None; rng is per (seed, epoch, index)."""
        return None

    def data_info(self) -> dict[str, Any]:
        """Small dataset facts a model keeps in its checkpoint for predict/generate (vocab, classes, scaling)."""
        meta = self.meta
        return {"domain": meta["domain"], **meta.get(meta["domain"], {})}

    def data_spec(self) -> DataSpec:
        return DataSpec.from_dict(self.store.meta["spec"])

    # -- Lightning hooks ----------------------------------------------------------------------
    def prepare_data(self) -> None:
        if self.rebuild or not (self.prepared_dir / "meta.json").exists():
            self._check_not_inside_source()
            self.build_store()

    def _check_not_inside_source(self) -> None:
        sources = getattr(self.hparams, "source", None) if hasattr(self, "hparams") else None
        check_not_inside_source(sources, self.prepared_dir)

    def setup(self, stage: str | None = None) -> None:
        if self.store is None:
            self.store = PreparedStore.open(self.prepared_dir)
            settings = getattr(self, "preprocessing_settings", None)
            if settings is not None:  # fit and evaluate refuse a store built with other preprocessing settings
                check_settings(self.store.meta, settings(), self.prepared_dir)
        # rebuilt on every setup: cheap index arithmetic, and the trainer (world size) may have changed
        self.datasets = {split: self.make_dataset(split) for split in ("train", "val", "test")}

    @property
    def spec(self) -> DataSpec:
        if self.store is None:
            self.prepare_data()
            self.setup()
        return self.data_spec()

    @property
    def meta(self) -> dict[str, Any]:
        if self.store is None:
            self.prepare_data()
            self.setup()
        return self.store.meta

    def _loader(self, split: str, shuffle: bool, collate: Callable | None = None) -> DataLoader:
        ds = self.datasets[split]
        if len(ds) == 0:
            raise SeqpipeError(
                f"the {split} split has no samples",
                where=self.prepared_dir,
                fix="use a larger corpus, a shorter window, or different split fractions",
            )
        sampler = None
        if split == "train":  # seeded order and per-sample draws: the same batches on every rerun
            ds = SeededSamples(ds, self.seed, self.sample_augment())
            sampler = EpochSampler(
                len(ds), self.seed, shuffle, epoch_fn=self._current_epoch, skip_fn=self._resumed_samples
            )
            shuffle = False
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            shuffle=shuffle,
            sampler=sampler,
            # its own generator: creating a loader iterator draws a worker seed, which from the global RNG
            # would shift every later dropout draw (and a resumed run's would differ from an unbroken one)
            generator=torch.Generator().manual_seed(self.seed),
            collate_fn=collate or self.collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            drop_last=False,
        )

    def _current_epoch(self) -> int:
        trainer = getattr(self, "trainer", None)
        return int(trainer.current_epoch) if trainer is not None else 0

    def _resumed_samples(self) -> int:
        """Samples of this epoch already trained when a run resumes mid-epoch (0 otherwise): the batches
        Lightning's restored loop state says were processed, times the global batch."""
        trainer = getattr(self, "trainer", None)
        if trainer is None or not trainer.training:
            return 0
        done = int(trainer.fit_loop.epoch_loop.batch_progress.current.processed)
        return done * self.batch_size * int(trainer.world_size) if trainer.fit_loop.restarting else 0

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
