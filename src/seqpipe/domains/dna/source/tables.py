"""CSV / TSV layouts of a DNA source: a table of sequences (``read_table``) and a sidecar label CSV
(``read_label_csv``), streamed line by line with bounded line lengths.

Separate from the FASTA and folder readers (seqpipe.domains.dna.source.formats): the csv module's quirks
(field size limit, dialects, line numbers) are all here.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from seqpipe.domains.dna.source.alphabet import _bases
from seqpipe.domains.dna.source.record import DnaRecord, _text
from seqpipe.domains.dna.source.rules import NO_MAX_LEN_BASES
from seqpipe.domains.dna.source.stream import MAX_LINE_EXTRA, _bounded_lines, _open_text, _too_long
from seqpipe.errors import SeqpipeError


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
