"""Text tokens: how a corpus is cut into characters or words, and the vocabulary a store maps them with.

Shared by preprocessing (seqpipe.domains.text.prepare, which streams word tokens chunk by chunk) and by
everything that reads a store back (the datamodule, generation, fill-in-the-blank). Needs no numpy, no torch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

from seqpipe.errors import SeqpipeError

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
