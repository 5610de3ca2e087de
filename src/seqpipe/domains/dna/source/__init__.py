"""DNA sources: FASTA / FASTA.gz, CSV / TSV and folder-per-class layouts -> labeled, encoded records.

Readers yield ``DnaRecord(id, sequence_bytes, label, split, where)``; ``encode`` turns the bases into
one byte a base (the codes below); ``iter_dna`` validates the whole set (ids, labels, lengths) with
the rules in ``DnaRules`` and yields encoded records one at a time (``read_dna`` collects them), plus
a report of what was repaired or skipped.

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

Modules: ``rules`` (DnaRules, ReadReport, the read bound), ``alphabet`` (codes, encode/decode),
``stream`` (bounded gzip/UTF-8 line reading), ``record`` (DnaRecord), ``formats`` (FASTA, class folders,
any source -> DnaRecord), ``tables`` (CSV/TSV tables, the label CSV), ``validate`` (``iter_dna``,
``read_dna``). The names below are importable from here.
"""

from seqpipe.domains.dna.source.alphabet import (
    ALPHABET,
    COMPLEMENT,
    IUPAC_AMBIGUOUS,
    PAD,
    VOCAB,
    A,
    C,
    G,
    N,
    T,
    decode,
    encode,
    reverse_complement,
)
from seqpipe.domains.dna.source.formats import (
    FASTA_SUFFIXES,
    TABLE_SUFFIXES,
    DnaRecord,
    header_label,
    iter_records,
    read_fasta,
    read_folder,
    read_label_csv,
    read_table,
    source_kind,
)
from seqpipe.domains.dna.source.rules import CROP_READ_FACTOR, NO_MAX_LEN_BASES, DnaRules, ReadReport, read_limit
from seqpipe.domains.dna.source.stream import CHUNK, MAX_LINE_EXTRA
from seqpipe.domains.dna.source.validate import ReadResult, ValidRecord, iter_dna, read_dna, source_files

__all__ = [
    "ALPHABET",
    "CHUNK",
    "COMPLEMENT",
    "CROP_READ_FACTOR",
    "FASTA_SUFFIXES",
    "IUPAC_AMBIGUOUS",
    "MAX_LINE_EXTRA",
    "NO_MAX_LEN_BASES",
    "PAD",
    "TABLE_SUFFIXES",
    "VOCAB",
    "A",
    "C",
    "DnaRecord",
    "DnaRules",
    "G",
    "N",
    "ReadReport",
    "ReadResult",
    "ValidRecord",
    "T",
    "decode",
    "encode",
    "header_label",
    "iter_dna",
    "iter_records",
    "read_dna",
    "read_fasta",
    "read_folder",
    "read_label_csv",
    "read_limit",
    "read_table",
    "reverse_complement",
    "source_files",
    "source_kind",
]
