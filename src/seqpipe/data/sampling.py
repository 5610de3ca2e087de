"""Seeded training order and per-sample randomness: a pure function of (seed, epoch, index).

Nothing here reads a global random state. The order of epoch ``e`` is ``permutation(seed, e)``, and
the random draws for sample ``i`` in that epoch (augmentation, masks) come from a generator seeded
with ``(seed, e, i)``. So a run is the same in the main process and in DataLoader workers, for any
number of workers, and a run resumed mid-epoch can skip to the exact batch it stopped at: no sampler
or worker state has to be saved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from torch.utils.data import Dataset, Sampler

Key = tuple[int, int]  # (epoch, sample index)


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for one sample's random draws in one epoch."""
    return np.random.default_rng([int(seed), int(epoch), int(index)])


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    return np.random.default_rng([int(seed), int(epoch), 2**31 - 1]).permutation(n) if shuffle else np.arange(n)


class EpochSampler(Sampler[Key]):
    """Yields (epoch, index) keys in the order of ``epoch_order``.

    The epoch comes from ``epoch_fn`` (the trainer's current epoch) when iteration starts, so it is
    right under Lightning's distributed wrapper too, which does not forward ``set_epoch``.
    ``skip_fn`` gives how many leading samples of the epoch to drop when iteration starts: a run
    resumed mid-epoch continues with exactly the batches an unbroken run would have seen next.
    """

    def __init__(
        self,
        n: int,
        seed: int,
        shuffle: bool = True,
        epoch_fn: Callable[[], int] | None = None,
        skip_fn: Callable[[], int] | None = None,
    ):
        self.n, self.seed, self.shuffle = n, int(seed), shuffle
        self.epoch_fn, self.skip_fn = epoch_fn, skip_fn
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[Key]:
        epoch = self.epoch_fn() if self.epoch_fn is not None else self.epoch
        skip = self.skip_fn() if self.skip_fn is not None else 0
        for i in epoch_order(self.n, self.seed, epoch, self.shuffle)[skip:]:
            yield (epoch, int(i))


class SeededSamples(Dataset):
    """A training view of a dataset: key (epoch, i) -> sample i, with its own seeded randomness.

    A dataset that draws randomness per sample (fill-in-the-blank masks) defines
    ``draw(i, rng)``; ``augment(sample, rng)`` (reverse complements, SpecAugment) runs after it.
    """

    def __init__(self, dataset: Dataset, seed: int, augment: Callable[[Any, np.random.Generator], Any] | None = None):
        self.dataset, self.seed, self.augment = dataset, int(seed), augment

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: Key) -> Any:
        epoch, i = key
        draw = getattr(self.dataset, "draw", None)
        if draw is None and self.augment is None:
            return self.dataset[i]
        rng = sample_rng(self.seed, epoch, i)
        item = draw(i, rng) if draw is not None else self.dataset[i]
        return self.augment(item, rng) if self.augment is not None else item
