"""The vectorized character encoder: text chunks -> code-point arrays -> counts and token ids (numpy).

A chunk becomes code points (ASCII chunks are their bytes, no decoding; others UTF-32 through numpy),
counted with bincount and mapped to ids through lookup tables that also lowercase (bytes.translate for
ASCII). The ids and vocabulary are exactly those of a per-token ``Counter``/dict encoder
(tests/domains/text/test_text.py compares the two on Unicode text).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

UNK = "<unk>"


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
            for k, p in zip(uniq.tolist(), (at[i] + pos).tolist(), strict=True):
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
