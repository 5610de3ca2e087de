"""``read_dna``: every record of a source checked against ``DnaRules`` (ids, labels, lengths), encoded,
and what was repaired or skipped reported.

Separate from the format readers: this is the one place the input rules are applied, the same for
every layout, and the one function the preprocess stage calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqpipe.errors import SeqpipeError
from seqpipe.sources.dna.alphabet import encode
from seqpipe.sources.dna.formats import iter_records
from seqpipe.sources.dna.rules import DnaRules, ReadReport, read_limit


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
