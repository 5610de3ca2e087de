"""Bounded, streamed text reading: gzip or plain bytes -> UTF-8 lines in pieces, never a whole line in memory.

Separate from the format readers because it is the memory and encoding guard they all stand on: a
multi-GB single-line record or a gzip bomb is cut off here, and decoding and gzip errors are named
by file, line and byte offset here, for FASTA, tables, folders and label files alike.
"""

from __future__ import annotations

import codecs
import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path

from seqpipe.domains.dna.source.rules import CROP_READ_FACTOR, NO_MAX_LEN_BASES
from seqpipe.errors import SeqpipeError

CHUNK = 1 << 16  # characters read at a time: no line is ever read whole
MAX_LINE_EXTRA = 1 << 16  # characters a FASTA header, a CSV line beside its sequence, or a label row may hold


def _too_long(where: str, max_bases: int) -> SeqpipeError:
    return SeqpipeError(
        f"sequence longer than {max_bases:,} bases: reading stopped there (a record is never held whole beyond "
        f"{CROP_READ_FACTOR} x max_len, or {NO_MAX_LEN_BASES:,} bases without max_len)",
        where=where,
        fix="raise data.max_len if such records are meant, else drop or split the record",
    )


def _open_text(path: Path) -> io.BufferedIOBase:
    """The file's bytes, gzip-decompressed for *.gz (decoded as UTF-8 piece by piece in ``_pieces``)."""
    if path.name.endswith(".gz"):
        try:
            with gzip.open(path, "rb") as f:
                f.peek(1)
        except (OSError, EOFError, zlib.error) as e:
            raise SeqpipeError(f"not a readable gzip file: {e}", where=path, fix="re-compress it with gzip") from e
        return gzip.open(path, "rb")
    return open(path, "rb")


def _pieces(f: io.BufferedIOBase, path: Path) -> Iterator[tuple[int, str, bool, bool]]:
    """(line number, piece, starts a line, ends a line): every line in pieces of at most CHUNK bytes, decoded
    as UTF-8 (a leading BOM skipped), line endings stripped, so a multi-GB line never sits in memory.
    Decoding and gzip errors name the file, the line and the byte offset."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    line_no, at_start, offset = 0, True, 0
    while True:
        try:
            raw = f.readline(CHUNK)
        except EOFError as e:
            raise SeqpipeError(
                f"truncated gzip file: the stream ends in line {line_no + at_start} ({e})",
                where=path,
                fix="re-download or re-compress the file",
            ) from e
        except (OSError, zlib.error) as e:
            raise SeqpipeError(
                f"corrupt gzip data near line {line_no + at_start}: {e}",
                where=path,
                fix="re-download or re-compress the file",
            ) from e
        if not raw:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError as e:
                raise SeqpipeError(
                    f"line {line_no}: not UTF-8 text (the file ends inside a character)",
                    where=path,
                    fix="save the file as UTF-8",
                ) from e
            return
        if offset == 0 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        line_no += at_start
        ends = raw.endswith(b"\n")
        try:
            piece = raw.decode("ascii") if at_start and ends and raw.isascii() else decoder.decode(raw, final=ends)
        except UnicodeDecodeError as e:
            raise SeqpipeError(
                f"line {line_no}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at byte offset {offset + e.start})",
                where=path,
                fix="save the file as UTF-8 (ids and labels may hold any Unicode character)",
            ) from e
        offset += len(raw)
        yield line_no, piece.rstrip("\r\n"), at_start, ends
        at_start = ends


def _bounded_lines(f: io.BufferedIOBase, path: Path, limit: int) -> Iterator[str]:
    """Whole lines (endings kept as '\\n'), each at most ``limit`` characters, else an error naming the line."""
    parts: list[str] = []
    size = 0
    for line_no, piece, _, ends in _pieces(f, path):
        parts.append(piece)
        size += len(piece)
        if size > limit:
            raise SeqpipeError(
                f"line {line_no} is longer than {limit:,} characters: reading stopped there",
                where=path,
                fix="raise data.max_len if such long sequences are meant, else fix the line",
            )
        if ends:
            yield "".join(parts) + "\n"
            parts, size = [], 0
    if parts:
        yield "".join(parts)
