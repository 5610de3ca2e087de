"""``iter_dna`` / ``read_dna``: every record of a source checked against ``DnaRules`` (ids, labels, lengths),
encoded, and what was repaired or skipped reported; streamed one record at a time, or collected.

Separate from the format readers: this is the one place the input rules are applied, the same for
every layout; the preprocess stage streams ``iter_dna`` straight into the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqpipe.domains.dna.source.alphabet import encode
from seqpipe.domains.dna.source.formats import iter_records
from seqpipe.domains.dna.source.rules import DnaRules, ReadReport, read_limit
from seqpipe.errors import SeqpipeError


@dataclass
class ReadResult:
    ids: list[str]
    codes: list[np.ndarray]
    labels: list[str]
    splits: list[str | None]
    report: ReadReport
    source_files: list[Path]


@dataclass
class ValidRecord:
    """One record that passed the rules: its encoded (and possibly cropped) bases."""

    id: str
    codes: np.ndarray
    label: str
    split: str | None


def iter_dna(
    source: str | Path,
    rules: DnaRules = DnaRules(),
    report: ReadReport | None = None,
    *,
    labels: str | Path | None = None,
    label_field: str | int | None = "label",
    require_labels: bool = True,
    **table_cols: str,
) -> Iterator[ValidRecord]:
    """Every usable record of a source, read, validated and encoded one at a time (the rules in the
    module docstring); repairs and skips go to ``report``. Streamed, so a caller that writes each record
    away holds only what it keeps. Errors that need the whole source (missing labels, nothing usable)
    are raised after the last record."""
    report = ReadReport() if report is None else report
    kw = dict(labels=labels, label_field=label_field, max_bases=read_limit(rules), **table_cols)
    seen: set[str] = set()
    missing: list[str] = []
    kept = 0
    for r in iter_records(source, **kw):
        if r.id in seen:
            # where the first one was: read again up to it (only on this error) rather than kept for every record
            first = next(x.where for x in iter_records(source, **kw) if x.id == r.id)
            raise SeqpipeError(
                f"duplicate id '{r.id}' (first at {first})", where=r.where, fix="give every record a unique id"
            )
        seen.add(r.id)
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
        kept += 1
        yield ValidRecord(r.id, codes, r.label if r.label is not None else "", r.split)
    if missing:
        shown = ", ".join(missing[:10]) + (f" ... ({len(missing)} in all)" if len(missing) > 10 else "")
        raise SeqpipeError(
            f"no label for {len(missing)} record(s): {shown}",
            where=labels or source,
            fix="add their labels, or set data.strict: false to skip unlabeled records",
        )
    if not kept:
        raise SeqpipeError("no usable records", where=source, fix="check the source and data.strict")


def source_files(source: str | Path, labels: str | Path | None = None) -> list[Path]:
    """The files a source reads (what the store's fingerprint hashes)."""
    path = Path(source)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return [*files, Path(labels)] if labels else files


def read_dna(
    source: str | Path,
    rules: DnaRules = DnaRules(),
    *,
    labels: str | Path | None = None,
    label_field: str | int | None = "label",
    require_labels: bool = True,
    **table_cols: str,
) -> ReadResult:
    """Read, validate and encode every record of a source into memory (``iter_dna`` streams instead)."""
    report = ReadReport()
    out = ReadResult([], [], [], [], report, [])
    for r in iter_dna(
        source, rules, report, labels=labels, label_field=label_field, require_labels=require_labels, **table_cols
    ):
        out.ids.append(r.id)
        out.codes.append(r.codes)
        out.labels.append(r.label)
        out.splits.append(r.split)
    out.source_files = source_files(source, labels)
    return out
