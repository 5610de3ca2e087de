"""The layouts a DNA source comes in -- FASTA(.gz), CSV/TSV tables, a folder per class, a sidecar label
CSV -- each read, streamed, into ``DnaRecord``s (raw bases, not yet validated or encoded).

Separate from validation (``validate.read_dna``) so that a new layout is one more reader here and
every layout is checked by the same rules afterwards. The CSV/TSV readers live in ``tables``, the record
type in ``record``; both are importable from here too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from seqpipe.domains.dna.source.alphabet import _bases
from seqpipe.domains.dna.source.record import DnaRecord, _text
from seqpipe.domains.dna.source.rules import NO_MAX_LEN_BASES
from seqpipe.domains.dna.source.stream import MAX_LINE_EXTRA, _open_text, _pieces, _too_long
from seqpipe.domains.dna.source.tables import read_label_csv, read_table
from seqpipe.errors import SeqpipeError

FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fas", ".fa.gz", ".fasta.gz", ".fna.gz", ".fas.gz")
TABLE_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz", ".txt.gz")


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
