"""The DNA alphabet: one uint8 code a base, encoding with validation, decoding, reverse complement.

Separate from reading because it is the contract every later layer shares (the store, the
datamodule's augmentations, the k-mer and position baselines read these codes), whatever file
the bases came from.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from seqpipe.domains.dna.source.rules import DnaRules, ReadReport
from seqpipe.errors import SeqpipeError

ALPHABET = "ACGTN"
PAD, A, C, G, T, N = 0, 1, 2, 3, 4, 5
VOCAB = ["<pad>", "A", "C", "G", "T", "N"]
IUPAC_AMBIGUOUS = "RYSWKMBDHV"
COMPLEMENT = np.array([PAD, T, G, C, A, N], dtype=np.uint8)  # code -> code of the complementary base

_INVALID = 255
_AMBIG = 254


@cache
def _lookup(convert_u: bool) -> np.ndarray:
    """byte -> code table: bases, N, ambiguity marker, invalid marker (built once: never written to)."""
    table = np.full(256, _INVALID, dtype=np.uint8)
    for ch, code in zip("ACGTN", (A, C, G, T, N), strict=False):
        table[ord(ch)] = table[ord(ch.lower())] = code
    for ch in IUPAC_AMBIGUOUS:
        table[ord(ch)] = table[ord(ch.lower())] = _AMBIG
    if convert_u:
        table[ord("U")] = table[ord("u")] = T
    table.flags.writeable = False
    return table


def encode(
    seq: bytes | str, rules: DnaRules = DnaRules(), record: str = "sequence", report: ReadReport | None = None
) -> np.ndarray:
    """Bases -> uint8 codes (1..5), validating every character; errors name record and 1-based position."""
    if isinstance(seq, str):
        raw = _bases(seq, record, 0) if not seq.isascii() else seq.encode("ascii")
    else:
        raw = seq
    codes = _lookup(rules.convert_u)[np.frombuffer(raw, dtype=np.uint8)]
    bad = np.flatnonzero(codes == _INVALID)
    if bad.size:
        pos = int(bad[0])
        ch = chr(raw[pos]) if raw[pos] < 128 else f"byte 0x{raw[pos]:02x}"
        hint = " (RNA: set data.convert_u: true)" if ch in "Uu" else ""
        raise SeqpipeError(
            f"invalid character {ch!r} at position {pos + 1}{hint}"
            + (f" ({bad.size} invalid characters in all)" if bad.size > 1 else ""),
            where=record,
            fix="sequences may hold A, C, G, T, N (any case) and IUPAC codes; clean the record or drop it",
        )
    amb = np.flatnonzero(codes == _AMBIG)
    if amb.size:
        if rules.strict:
            pos = int(amb[0])
            raise SeqpipeError(
                f"IUPAC ambiguity code {chr(raw[pos])!r} at position {pos + 1} in strict mode",
                where=record,
                fix="set data.strict: false to read ambiguity codes as N",
            )
        codes[amb] = N
        if report is not None:
            report.ambiguous_to_n[record] = int(amb.size)
    return codes


def reverse_complement(codes: np.ndarray) -> np.ndarray:
    return COMPLEMENT[np.asarray(codes)[::-1]]


def decode(codes: np.ndarray) -> str:
    return "".join(VOCAB[c] if c else "" for c in np.asarray(codes).tolist())


def _bases(text: str, where: str, done: int) -> bytes:
    """Sequence text without whitespace -> ASCII bytes; a non-ASCII character is an error at its position."""
    if not text.isalpha():  # whitespace (or anything else) inside: drop the whitespace
        text = "".join(text.split())
    if not text.isascii():
        pos = next(i for i, ch in enumerate(text) if not ch.isascii())
        raise SeqpipeError(
            f"invalid character {text[pos]!r} at position {done + pos + 1}",
            where=where,
            fix="sequences may hold A, C, G, T, N (any case) and IUPAC codes; clean the record or drop it",
        )
    return text.encode("ascii")
