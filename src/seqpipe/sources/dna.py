"""DNA sources: FASTA / FASTA.gz, CSV / TSV and folder-per-class layouts -> labeled, encoded records.

Readers yield ``DnaRecord(id, sequence_bytes, label, split, where)``; ``encode`` turns the bases into
one byte a base (the codes below); ``read_dna`` validates the whole set (ids, labels, lengths) with
the rules in ``DnaRules`` and returns encoded records plus a report of what was repaired or skipped.

Codes (one uint8 a base)::

    0 = padding (never stored, only in batches)   1 = A   2 = C   3 = G   4 = T   5 = N

Input rules (``DnaRules``, ``strict`` picks error vs. repair where both make sense):

- files are UTF-8 (a BOM is skipped; lines end in LF or CRLF; ids and labels may hold any Unicode character,
  NFC-normalized); other bytes are an error naming file and line. ``.gz`` files are decompressed while reading; a
  truncated or corrupt gzip stream is an error naming the file.
- FASTA, CSV/TSV and folder files are streamed record by record and line by line in bounded pieces:
  a record is read up to ``max_len`` x 10 bases (``CROP_READ_FACTOR``; 50 M bases without
  ``max_len``) and is an error as soon as it passes that, so a single-line multi-GB record or a
  gzip bomb stops before memory runs out. CSV fields may be of any length up to that bound.
- case-insensitive; whitespace inside sequence lines is ignored.
- IUPAC ambiguity codes (R Y S W K M B D H V) -> N; in strict mode an error naming record and position.
- U -> T when ``convert_u`` (RNA input); otherwise U is an invalid character.
- any other character (digits, '-', '*', 'X', ...) is always an error naming record and 1-based position.
- empty sequence: strict -> error; else the record is skipped (reported).
- longer than ``max_len``: strict -> error; else center-cropped to ``max_len`` (reported).
- duplicate ids: always an error (labels and splits would be ambiguous).
- label missing for an id (sidecar CSV / header field): strict -> error listing the ids; else skipped (reported).
- fewer than two classes: always an error (nothing to classify).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import unicodedata
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqpipe.errors import SeqpipeError

ALPHABET = "ACGTN"
PAD, A, C, G, T, N = 0, 1, 2, 3, 4, 5
VOCAB = ["<pad>", "A", "C", "G", "T", "N"]
IUPAC_AMBIGUOUS = "RYSWKMBDHV"
COMPLEMENT = np.array([PAD, T, G, C, A, N], dtype=np.uint8)  # code -> code of the complementary base

FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fas", ".fa.gz", ".fasta.gz", ".fna.gz", ".fas.gz")
TABLE_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz", ".txt.gz")

_INVALID = 255
_AMBIG = 254


def _lookup(convert_u: bool) -> np.ndarray:
    """byte -> code table: bases, N, ambiguity marker, invalid marker."""
    table = np.full(256, _INVALID, dtype=np.uint8)
    for ch, code in zip("ACGTN", (A, C, G, T, N), strict=False):
        table[ord(ch)] = table[ord(ch.lower())] = code
    for ch in IUPAC_AMBIGUOUS:
        table[ord(ch)] = table[ord(ch.lower())] = _AMBIG
    if convert_u:
        table[ord("U")] = table[ord("u")] = T
    return table


@dataclass(frozen=True)
class DnaRules:
    """How bases, lengths and labels are checked (see the module docstring)."""

    strict: bool = True
    convert_u: bool = False
    max_len: int | None = None
    min_len: int = 1


@dataclass
class DnaRecord:
    id: str
    seq: bytes
    label: str | None
    split: str | None = None  # a split the source itself defines (genomic-benchmarks train/test, a CSV column)
    where: str = ""  # file (and line) for messages


@dataclass
class ReadReport:
    """What was repaired or skipped, kept in meta.json and printed by the preprocess stage."""

    ambiguous_to_n: dict[str, int] = field(default_factory=dict)  # id -> IUPAC codes replaced
    cropped: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "ambiguous_to_n_records": len(self.ambiguous_to_n),
            "ambiguous_to_n_bases": int(sum(self.ambiguous_to_n.values())),
            "cropped_records": len(self.cropped),
            "cropped_ids": self.cropped[:50],
            "skipped": self.skipped[:200],
            "skipped_count": len(self.skipped),
        }


# -- encoding ---------------------------------------------------------------------------------
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


# -- reading ----------------------------------------------------------------------------------
CHUNK = 1 << 16  # characters read at a time: no line is ever read whole
MAX_LINE_EXTRA = 1 << 16  # characters a FASTA header, a CSV line beside its sequence, or a label row may hold
CROP_READ_FACTOR = 10  # records are read up to max_len x this, then cropped (lenient) or refused (strict)
NO_MAX_LEN_BASES = 50_000_000  # without max_len, a record longer than this is an error (set data.max_len)


def read_limit(rules: DnaRules) -> int:
    """Most bases a record may reach while it is being read (memory stays bounded by this)."""
    return rules.max_len * CROP_READ_FACTOR if rules.max_len else NO_MAX_LEN_BASES


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


def _text(value: str) -> str:
    """Ids and labels: stripped, Unicode NFC (so 'é' typed two ways is one class)."""
    value = value.strip()
    return value if value.isascii() else unicodedata.normalize("NFC", value)


def source_kind(path: Path) -> str:
    """'fasta', 'table' or 'folder' from the path (suffix or directory)."""
    if path.is_dir():
        return "folder"
    name = path.name.lower()
    if name.endswith(FASTA_SUFFIXES):
        return "fasta"
    if name.endswith(TABLE_SUFFIXES):
        return "table"
    raise SeqpipeError(
        "cannot tell the format from the file name",
        where=path,
        fix=f"use a FASTA ({', '.join(FASTA_SUFFIXES[:3])}, .gz too), a .csv/.tsv table or a folder per class",
    )


def header_label(header: str, label_field: str | int | None) -> str | None:
    """Label from a FASTA header: ``key=value`` token (label_field a name) or field number (an int, 0 = id)."""
    if label_field is None:
        return None
    tokens = [t for t in re.split(r"[\s|]+", header.strip()) if t]
    if isinstance(label_field, int) or (isinstance(label_field, str) and label_field.isdigit()):
        k = int(label_field)
        return _text(tokens[k]) if 0 < k < len(tokens) else None
    prefix = f"{label_field}="
    for t in tokens[1:]:
        if t.startswith(prefix):
            return _text(t[len(prefix) :]) or None
    return None


def read_fasta(
    path: Path,
    label_field: str | int | None = "label",
    max_bases: int = NO_MAX_LEN_BASES,
    id_prefix: str = "",
    label: str | None = None,
    split: str | None = None,
) -> Iterator[DnaRecord]:
    """FASTA / FASTA.gz records, streamed: the id is the header's first word, the label from ``header_label``
    (or ``label``). A record longer than ``max_bases`` is an error as soon as reading passes that length."""
    with _open_text(path) as f:
        header: list[str] | None = None
        seq = bytearray()
        mode, start, rid, where = "", 0, "", ""
        for line_no, piece, at_start, _ in _pieces(f, path):
            if at_start:
                if mode == "header":  # the header line is complete: name the record once
                    rid = id_prefix + _fasta_id(path, start, header)
                    where = f"{path}:{start} record '{rid}'"
                if piece.startswith(">"):
                    if header is not None:
                        yield _fasta_record(path, start, header, seq, label_field, id_prefix, label, split)
                    header, seq, mode, start, piece = [], bytearray(), "header", line_no, piece[1:]
                elif piece.startswith(";"):
                    mode = "comment"
                else:
                    mode = "seq"
                    if header is None and piece.strip():
                        raise SeqpipeError(
                            f"sequence data before the first '>' header (line {line_no})",
                            where=path,
                            fix="a FASTA record starts with a '>id' line",
                        )
            if mode == "seq":
                if header is not None:
                    seq += _bases(piece, where, len(seq))
                    if len(seq) > max_bases:
                        raise _too_long(where, max_bases)
            elif mode == "header":
                header.append(piece)
                if len(header) > 1 and sum(map(len, header)) > MAX_LINE_EXTRA:
                    raise SeqpipeError(
                        f"header line {start} is longer than {MAX_LINE_EXTRA:,} characters",
                        where=path,
                        fix="shorten the '>' line (id and label fields)",
                    )
        if header is None:
            raise SeqpipeError("no FASTA records ('>' header lines) found", where=path, fix="check the file format")
        yield _fasta_record(path, start, header, seq, label_field, id_prefix, label, split)


def _fasta_id(path: Path, line: int, header: list[str]) -> str:
    words = (header[0] if len(header) == 1 else "".join(header)).split(maxsplit=1)
    if not words:
        raise SeqpipeError(f"record at line {line} has an empty id", where=path, fix="give every '>' line an id")
    return _text(words[0])


def _fasta_record(
    path: Path,
    line: int,
    header: list[str],
    seq: bytearray,
    label_field,
    id_prefix: str = "",
    label: str | None = None,
    split: str | None = None,
) -> DnaRecord:
    rid = id_prefix + _fasta_id(path, line, header)
    lab = label if label is not None else header_label("".join(header), label_field)
    return DnaRecord(rid, bytes(seq), lab, split, f"{path}:{line} record '{rid}'")


class _FieldLimit:
    """csv.field_size_limit raised to ``limit`` while a table is read (CSV fields of any length up to it)."""

    def __init__(self, limit: int):
        self.limit = limit

    def __enter__(self) -> None:
        self.old = csv.field_size_limit()
        csv.field_size_limit(max(self.old, self.limit))

    def __exit__(self, *exc) -> None:
        csv.field_size_limit(self.old)


def read_table(
    path: Path,
    sequence_column: str = "sequence",
    label_column: str = "label",
    id_column: str = "id",
    split_column: str = "split",
    max_bases: int = NO_MAX_LEN_BASES,
) -> Iterator[DnaRecord]:
    """CSV / TSV (.gz too) with a header row: sequence and label columns, optional id and split columns.
    Streamed row by row; a line longer than ``max_bases`` (+ room for the other fields) is an error."""
    delim = "\t" if ".tsv" in path.name.lower() else ","
    limit = max_bases + MAX_LINE_EXTRA
    with _open_text(path) as f, _FieldLimit(limit):
        reader = csv.DictReader(_bounded_lines(f, path, limit), delimiter=delim)
        try:
            cols = reader.fieldnames or []
            if sequence_column not in cols:
                raise SeqpipeError(
                    f"no '{sequence_column}' column (columns: {cols})",
                    where=path,
                    fix="name the columns in a header row, e.g. sequence,label, or set data.sequence_column",
                )
            for row in reader:
                row_no = reader.line_num
                rid = _text(row.get(id_column) or "") or f"row{row_no}"
                where = f"{path}:{row_no} record '{rid}'"
                text = row.get(sequence_column) or ""
                if len(text) > max_bases and len("".join(text.split())) > max_bases:
                    raise _too_long(where, max_bases)
                label = _text(row.get(label_column) or "") or None
                split = (row.get(split_column) or "").strip() or None
                yield DnaRecord(rid, _bases(text, where, 0), label, split, where)
        except csv.Error as e:
            raise SeqpipeError(
                f"malformed CSV near line {reader.line_num}: {e}",
                where=path,
                fix="check the quoting and the delimiter (',' for .csv, tab for .tsv)",
            ) from e


def read_folder(root: Path, max_bases: int = NO_MAX_LEN_BASES) -> Iterator[DnaRecord]:
    """A folder per class of plain sequence files: ``root/<class>/*`` or genomic-benchmarks'
    ``root/{train,test}/<class>/*`` (its train/test split is kept). One sequence a file; a file holding
    FASTA is read as FASTA. Record ids are ``<split>/<class>/<file stem>``."""
    split_dirs = [d for d in ("train", "val", "test") if (root / d).is_dir()]
    layouts = [(root / d, d) for d in split_dirs] if split_dirs else [(root, None)]
    found = False
    for base, split in layouts:
        for class_dir in sorted(d for d in base.iterdir() if d.is_dir() and not d.name.startswith(".")):
            label = _text(class_dir.name)
            for f in sorted(class_dir.iterdir()):
                if not f.is_file() or f.name.startswith("."):
                    continue
                found = True
                rid = "/".join(p for p in (split, label, f.name.split(".")[0]) if p)
                seq = _read_plain(f, f"{f} record '{rid}'", max_bases)
                if seq is None:
                    yield from read_fasta(f, None, max_bases, id_prefix=f"{rid}/", label=label, split=split)
                else:
                    yield DnaRecord(rid, seq, label, split, f"{f} record '{rid}'")
    if not found:
        raise SeqpipeError(
            "no sequence files found in class folders",
            where=root,
            fix="lay out <root>/<class>/<file>.txt (or <root>/train|test/<class>/...)",
        )


def _read_plain(path: Path, where: str, max_bases: int) -> bytes | None:
    """A file of bare sequence (streamed, bounded); None when it holds FASTA instead."""
    seq = bytearray()
    with _open_text(path) as f:
        for _, piece, at_start, _ in _pieces(f, path):
            if not seq and at_start and piece.lstrip().startswith(">"):
                return None
            seq += _bases(piece, where, len(seq))
            if len(seq) > max_bases:
                raise _too_long(where, max_bases)
    return bytes(seq)


def read_label_csv(path: Path) -> dict[str, str]:
    """Sidecar labels: a CSV/TSV with columns id,label (a header row; the first two columns otherwise)."""
    if not path.exists():
        raise SeqpipeError("labels file not found", where=path, fix="check data.labels")
    delim = "\t" if ".tsv" in path.name.lower() else ","
    labels: dict[str, str] = {}
    with _open_text(path) as f:
        rows = csv.reader(_bounded_lines(f, path, MAX_LINE_EXTRA), delimiter=delim)
        try:
            first = next(rows, None)
            if first is None:
                raise SeqpipeError("labels file is empty", where=path, fix="write rows of id,label")
            header = [c.strip().lower() for c in first]
            ic, lc = (header.index("id"), header.index("label")) if {"id", "label"} <= set(header) else (0, 1)
            body = rows if {"id", "label"} <= set(header) else [first, *rows]
            for row in body:
                n = rows.line_num
                if not row or not "".join(row).strip():
                    continue
                if len(row) <= max(ic, lc):
                    raise SeqpipeError(f"line {n} has {len(row)} columns, needs id and label", where=path)
                rid, lab = _text(row[ic]), _text(row[lc])
                if rid in labels and labels[rid] != lab:
                    raise SeqpipeError(
                        f"id '{rid}' has two labels ({labels[rid]!r}, {lab!r}) (line {n})",
                        where=path,
                        fix="give each id one label",
                    )
                labels[rid] = lab
        except csv.Error as e:
            raise SeqpipeError(
                f"malformed CSV near line {rows.line_num}: {e}", where=path, fix="write rows of id,label"
            ) from e
    return labels


def iter_records(
    source: str | Path,
    *,
    labels: str | Path | None = None,
    label_field: str | int | None = "label",
    sequence_column: str = "sequence",
    label_column: str = "label",
    id_column: str = "id",
    max_bases: int = NO_MAX_LEN_BASES,
) -> Iterator[DnaRecord]:
    """Records of any supported source, streamed, labels attached from the sidecar CSV when given."""
    path = Path(source)
    if not path.exists():
        raise SeqpipeError(
            "DNA source not found", where=path, fix="point data.source at a FASTA(.gz), a CSV/TSV or a folder per class"
        )
    kind = source_kind(path)
    if kind == "fasta":
        recs = read_fasta(path, None if labels else label_field, max_bases)
    elif kind == "table":
        recs = read_table(path, sequence_column, label_column, id_column, max_bases=max_bases)
    else:
        recs = read_folder(path, max_bases)
    if labels is None:
        yield from recs
        return
    table = read_label_csv(Path(labels))
    for r in recs:
        r.label = table.get(r.id)
        yield r


@dataclass
class ReadResult:
    ids: list[str]
    codes: list[np.ndarray]
    labels: list[str]
    splits: list[str | None]
    report: ReadReport
    source_files: list[Path]


def read_dna(
    source: str | Path,
    rules: DnaRules = DnaRules(),
    *,
    labels: str | Path | None = None,
    label_field: str | int | None = "label",
    require_labels: bool = True,
    **table_cols: str,
) -> ReadResult:
    """Read, validate and encode every record of a source (the rules in the module docstring)."""
    report = ReadReport()
    out = ReadResult([], [], [], [], report, [])
    seen: dict[str, str] = {}
    missing: list[str] = []
    for r in iter_records(source, labels=labels, label_field=label_field, max_bases=read_limit(rules), **table_cols):
        if r.id in seen:
            raise SeqpipeError(
                f"duplicate id '{r.id}' (first at {seen[r.id]})", where=r.where, fix="give every record a unique id"
            )
        seen[r.id] = r.where
        if require_labels and r.label is None:
            if rules.strict:
                missing.append(r.id)
                continue
            report.skipped.append({"id": r.id, "reason": "no label"})
            continue
        if len(r.seq) < max(1, rules.min_len):
            if rules.strict:
                raise SeqpipeError(
                    "empty sequence"
                    if not r.seq
                    else f"sequence of {len(r.seq)} bases, shorter than min_len {rules.min_len}",
                    where=r.where,
                    fix="remove the record, or set data.strict: false to skip such records",
                )
            report.skipped.append({"id": r.id, "reason": "empty" if not r.seq else f"shorter than {rules.min_len}"})
            continue
        codes = encode(r.seq, rules, r.where, report)
        if rules.max_len and len(codes) > rules.max_len:
            if rules.strict:
                raise SeqpipeError(
                    f"sequence of {len(codes)} bases is longer than max_len {rules.max_len}",
                    where=r.where,
                    fix="raise data.max_len, or set data.strict: false to center-crop",
                )
            cut = (len(codes) - rules.max_len) // 2
            codes = codes[cut : cut + rules.max_len]
            report.cropped.append(r.id)
        out.ids.append(r.id)
        out.codes.append(codes)
        out.labels.append(r.label if r.label is not None else "")
        out.splits.append(r.split)
    if missing:
        shown = ", ".join(missing[:10]) + (f" ... ({len(missing)} in all)" if len(missing) > 10 else "")
        raise SeqpipeError(
            f"no label for {len(missing)} record(s): {shown}",
            where=labels or source,
            fix="add their labels, or set data.strict: false to skip unlabeled records",
        )
    if not out.ids:
        raise SeqpipeError("no usable records", where=source, fix="check the source and data.strict")
    path = Path(source)
    out.source_files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    if labels:
        out.source_files.append(Path(labels))
    return out
