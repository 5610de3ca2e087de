"""DNA preprocessing: a labeled source streamed record by record into a prepared store, then split.

Separate from the datamodule (``seqpipe.domains.dna.datamodule``) because it is the part that scales with the file:
every record is read, validated and encoded by ``seqpipe.domains.dna.source.iter_dna`` and its bases are
appended to the store's ``bases`` array in bounded batches as it goes. Only per-record metadata stays
in memory (id, label, source split, length, the group of identical sequences by a 16-byte hash), so
peak memory does not grow with the bases of a multi-GB FASTA. Errors abort the writer: nothing is left.

Splits (``assign_splits``): a split the source defines (genomic-benchmarks ``train/``/``test/`` folders,
a CSV ``split`` column) is kept, with val (``val_fraction`` of the train records, stratified) carved
from train; otherwise a split stratified by label, seeded. Identical sequences form one group and
always land in one split, so no test sequence is seen in training. The class list is fitted on the
train split and stored in meta.json; a val/test label unseen in train is an error.
"""

from __future__ import annotations

import hashlib
import re
from array import array
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from seqpipe.data.spec import DataSpec
from seqpipe.data.store import SPLIT_CODE, SPLITS, PreparedStore, StoreWriter, fingerprint
from seqpipe.domains.dna.settings import DnaSettings
from seqpipe.domains.dna.source.alphabet import COMPLEMENT, PAD, VOCAB
from seqpipe.domains.dna.source.rules import ReadReport
from seqpipe.domains.dna.source.validate import iter_dna, source_files
from seqpipe.errors import SeqpipeError

LENGTH_POLICY = (
    "ragged: stored at full length; batches padded to their longest record with lengths "
    "(packing/masking); longer than max_len: error (strict) or center-crop to max_len"
)
WRITE_BATCH = 1 << 22  # bases gathered before one append to the store: bounded memory, few large writes


def natural_sorted(labels: set[str]) -> list[str]:
    """Class order: numerically when every label is an integer ('0','1','10'), else alphabetically."""
    if all(re.fullmatch(r"-?\d+", x) for x in labels):
        return sorted(labels, key=int)
    return sorted(labels)


def sequence_group(groups: dict[bytes, int], codes: np.ndarray) -> int:
    """The group of identical sequences ``codes`` belongs to, numbered in order of first appearance."""
    return groups.setdefault(hashlib.blake2b(codes.tobytes(), digest_size=16).digest(), len(groups))


def assign_splits(
    gid: np.ndarray,
    labels: list[str],
    given: list[str | None],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    where: str,
) -> np.ndarray:
    """Split code per record: the source's own split when it has one, else stratified by label.

    ``gid`` is each record's ``sequence_group``: records of one group share a split (no train/test leakage).
    """
    rng = np.random.default_rng(seed)
    gid = np.asarray(gid, dtype=np.int64)
    n_groups = int(gid.max()) + 1 if len(gid) else 0
    first = np.unique(gid, return_index=True)[1]  # groups are numbered 0..n-1 by first record
    split_of_group = np.full(n_groups, -1)
    if any(g is not None for g in given):
        unknown = sorted({g for g in given if g is not None and g not in SPLIT_CODE})
        if unknown or any(g is None for g in given):
            raise SeqpipeError(
                f"split values must be train/val/test for every record, found {unknown or ['(empty)']}",
                where=where,
                fix="fix the split column / folder names, or drop the split column",
            )
        codes = np.array([SPLIT_CODE[g] for g in given])
        split = codes.copy()
        if not (codes == SPLIT_CODE["val"]).any():  # carve val from train, stratified, by group
            train_groups = np.unique(gid[codes == SPLIT_CODE["train"]])
            val_groups = _stratified_pick(train_groups, first, labels, val_fraction, rng)
            split[(codes == SPLIT_CODE["train"]) & np.isin(gid, val_groups)] = SPLIT_CODE["val"]
        return split
    order = np.arange(n_groups)
    test_groups = _stratified_pick(order, first, labels, test_fraction, rng)
    split_of_group[:] = SPLIT_CODE["train"]
    split_of_group[test_groups] = SPLIT_CODE["test"]
    rest = order[split_of_group == SPLIT_CODE["train"]]
    val_groups = _stratified_pick(rest, first, labels, val_fraction / max(1e-9, 1 - test_fraction), rng)
    split_of_group[val_groups] = SPLIT_CODE["val"]
    return split_of_group[gid]


def _stratified_pick(
    groups: np.ndarray, first: np.ndarray, labels: list[str], fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """``fraction`` of the groups of each label (at least one when a label has >= 3 groups)."""
    picked = []
    glabels = np.array([labels[first[g]] for g in groups])
    for lab in sorted(set(glabels.tolist())):
        members = groups[glabels == lab]
        k = int(round(fraction * len(members)))
        if k == 0 and len(members) >= 3 and fraction > 0:
            k = 1
        picked.append(rng.permutation(members)[:k])
    return np.concatenate(picked) if picked else np.zeros(0, int)


class _Records:
    """What preprocessing keeps of each record: id, label, source split, length, sequence group.

    Labels and splits repeat: each distinct string is held once.
    """

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.labels: list[str] = []
        self.splits: list[str | None] = []
        self.lengths = array("q")
        self.gid = array("q")
        self.groups: dict[bytes, int] = {}
        self._strings: dict[str, str] = {}

    def add(self, rid: str, codes: np.ndarray, label: str, split: str | None) -> None:
        self.ids.append(rid)
        self.labels.append(self._strings.setdefault(label, label))
        self.splits.append(split if split is None else self._strings.setdefault(split, split))
        self.lengths.append(len(codes))
        self.gid.append(sequence_group(self.groups, codes))


def _stream_bases(w: StoreWriter, records, keep: _Records) -> None:
    """Append every record's bases to the store, ``WRITE_BATCH`` bases at a time, keeping its metadata."""
    pending: list[np.ndarray] = []
    size = 0
    for r in records:
        keep.add(r.id, r.codes, r.label, r.split)
        pending.append(r.codes)
        size += len(r.codes)
        if size >= WRITE_BATCH:
            w.append("bases", np.concatenate(pending).astype(np.uint8, copy=False))
            pending, size = [], 0
    if pending:
        w.append("bases", np.concatenate(pending).astype(np.uint8, copy=False))


def prepare_dna(
    source: str | Path, out_dir: str | Path, settings: DnaSettings | None = None, **changes: Any
) -> PreparedStore:
    """Read, validate and split a labeled DNA source into a prepared store, streamed (see the module docstring).

    ``settings`` (default ``DnaSettings()``) with ``changes`` (any of its fields by name) say how.
    """
    s = replace(settings or DnaSettings(), **changes)
    s.check()
    report = ReadReport()
    recs = _Records()
    with StoreWriter(out_dir, domain="dna") as w:
        records = iter_dna(source, s.rules(), report, labels=s.labels, label_field=s.label_field, **s.columns())
        _stream_bases(w, records, recs)
        _check_two_classes(recs, source, s.labels)
        split = assign_splits(recs.gid, recs.labels, recs.splits, s.val_fraction, s.test_fraction, s.seed, str(source))
        classes = _train_classes(recs, split, source)
        cid = {c: i for i, c in enumerate(classes)}
        y = np.array([cid[x] for x in recs.labels], dtype=np.int16)
        lengths = np.frombuffer(recs.lengths, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        fp = fingerprint(source_files(source, s.labels), extra=s.fingerprint_extra())
        w.set_index(
            offset=offsets, length=lengths, split=split.astype(np.int8), label=y, id=np.array(recs.ids, dtype=str)
        )
        spec = DataSpec(
            input="tokens", target="class", vocab_size=len(VOCAB), num_classes=len(classes), max_len=int(lengths.max())
        )
        w.commit(
            {
                "name": Path(out_dir).name,
                "source": str(source),
                "labels_file": str(s.labels) if s.labels else None,
                "fingerprint": fp,
                "spec": spec.to_dict(),
                "settings": s.recorded(source),
                "skipped": report.skipped[:200],
                "repairs": {k: v for k, v in report.to_dict().items() if k != "skipped" and v},
                "dna": _dna_meta(s, classes, split, y, lengths, recs, report),
            }
        )
    return PreparedStore.open(out_dir)


def _check_two_classes(recs: _Records, source: str | Path, labels: str | Path | None) -> None:
    all_classes = set(recs.labels)
    if len(all_classes) < 2:
        raise SeqpipeError(
            f"only one class ({sorted(all_classes)[0]!r}) in {len(recs.ids)} records: nothing to classify",
            where=labels or source,
            fix="give the records at least two different labels",
        )


def _train_classes(recs: _Records, split: np.ndarray, source: str | Path) -> list[str]:
    """The class list, fitted on the train split: at least two classes, every class seen in training."""
    all_classes = set(recs.labels)
    lab = np.array(recs.labels)
    train_classes = set(lab[split == SPLIT_CODE["train"]].tolist())
    if len(train_classes) < 2:
        raise SeqpipeError(
            f"the train split holds only the class(es) {sorted(train_classes)}",
            where=source,
            fix="give every class enough records (or fix the source's split)",
        )
    unseen = sorted(all_classes - train_classes)
    if unseen:
        rec = recs.ids[int(np.flatnonzero(lab == unseen[0])[0])]
        raise SeqpipeError(
            f"label(s) {unseen} occur in val/test but never in train (e.g. record '{rec}')",
            where=source,
            fix="add training records of those classes or drop them",
        )
    return natural_sorted(train_classes)


def _dna_meta(
    s: DnaSettings,
    classes: list[str],
    split: np.ndarray,
    y: np.ndarray,
    lengths: np.ndarray,
    recs: _Records,
    report: ReadReport,
) -> dict[str, Any]:
    """meta.json["dna"]: the vocabulary, classes and their counts per split, lengths, rules and read report."""
    per_split = {
        name: {c: int(((split == SPLIT_CODE[name]) & (y == i)).sum()) for i, c in enumerate(classes)} for name in SPLITS
    }
    return {
        "vocab": VOCAB,
        "pad_id": PAD,
        "complement": COMPLEMENT.tolist(),
        "classes": classes,
        "positive_class": classes[1] if len(classes) == 2 else None,
        "class_counts": per_split,
        "length": {"min": int(lengths.min()), "max": int(lengths.max()), "mean": float(lengths.mean())},
        "length_policy": LENGTH_POLICY,
        "rules": dict(s.rules().__dict__),
        "label_field": s.label_field,
        "split_from_source": any(x is not None for x in recs.splits),
        "read_report": report.to_dict(),
    }


def dna_settings(source: str | Path, **settings: Any) -> dict[str, Any]:
    """The preprocessing settings a DNA store records in meta.json["settings"] (``DnaSettings`` fields)."""
    return DnaSettings(**settings).recorded(source)
