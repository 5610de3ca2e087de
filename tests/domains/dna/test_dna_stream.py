"""The streamed DNA preprocess: the store it writes record by record equals one built from ``read_dna``'s
in-memory records, and its memory does not grow with the bases."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from seqpipe.data.store import SPLIT_CODE
from seqpipe.domains.dna import prepare as dna_prepare
from seqpipe.domains.dna.prepare import assign_splits, natural_sorted, prepare_dna
from seqpipe.domains.dna.source import DnaRules, read_dna


def messy_fasta(path: Path, n: int = 120, seed: int = 4) -> Path:
    """Multi-line records of mixed lengths: N bases, lower case, IUPAC codes, exact duplicates under new
    ids, an empty record, an over-long one and three labels."""
    rng = np.random.default_rng(seed)
    seqs = ["".join(rng.choice(list("ACGTN" if i % 4 == 0 else "ACGT"), int(rng.integers(5, 140)))) for i in range(n)]
    seqs += seqs[:15]  # duplicates: must share a split with their originals
    seqs[7], seqs[9], seqs[11] = "RYacgtNNK", "", "ACGT" * 60
    labels = [("pos", "neg", "mid")[i % 3] for i in range(len(seqs))]
    path.write_text(
        "".join(
            f">r{i} x label={lab}\n" + "".join(s[j : j + 33] + "\n" for j in range(0, len(s), 33))
            for i, (s, lab) in enumerate(zip(seqs, labels, strict=True))
        )
    )
    return path


@pytest.mark.parametrize("batch", [7, 1 << 22])  # bases appended in many small batches, or in one
def test_streamed_store_equals_one_built_from_read_dna(tmp_path: Path, monkeypatch, batch: int) -> None:
    monkeypatch.setattr(dna_prepare, "WRITE_BATCH", batch)
    fa = messy_fasta(tmp_path / "m.fa")
    kw = dict(strict=False, max_len=200, val_fraction=0.15, test_fraction=0.2, seed=9)
    store = prepare_dna(fa, tmp_path / "prep", **kw)
    ref = read_dna(fa, DnaRules(strict=False, max_len=200))
    assert np.array_equal(np.asarray(store.arrays["bases"]), np.concatenate(ref.codes))
    ix = store.index
    lengths = np.array([len(c) for c in ref.codes])
    assert ix["length"].tolist() == lengths.tolist() and ix["id"].tolist() == ref.ids
    assert ix["offset"].tolist() == (np.cumsum(lengths) - lengths).tolist()
    classes = natural_sorted(set(ref.labels))
    assert ix["label"].tolist() == [classes.index(x) for x in ref.labels]
    first: dict[bytes, int] = {}  # groups by the bases themselves, not by their hash
    gid = np.array([first.setdefault(c.tobytes(), len(first)) for c in ref.codes])
    split = assign_splits(gid, ref.labels, ref.splits, 0.15, 0.2, 9, str(fa))
    assert ix["split"].tolist() == split.tolist() and len(first) < len(ref.ids)
    assert {ix["split"][i] for i in range(len(gid)) if gid[i] == gid[0]} == {ix["split"][0]}
    assert store.meta["dna"]["read_report"] == ref.report.to_dict()
    assert store.meta["records"] == len(ref.ids) and (ix["split"] == SPLIT_CODE["test"]).any()


def test_streamed_preprocess_holds_a_bounded_batch_not_the_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(dna_prepare, "WRITE_BATCH", 1 << 16)
    rng = np.random.default_rng(0)
    lut = np.frombuffer(b"ACGT", np.uint8)
    with open(tmp_path / "big.fa", "wb") as f:
        for i in range(500):
            seq = lut[rng.integers(0, 4, 20_000)].tobytes()
            f.write(f">r{i} label={i % 2}\n".encode() + b"\n".join(seq[j : j + 80] for j in range(0, len(seq), 80)))
            f.write(b"\n")
    tracemalloc.start()
    try:
        store = prepare_dna(tmp_path / "big.fa", tmp_path / "prep")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(store.arrays["bases"]) == 10_000_000
    assert peak < 3_000_000  # 10 MB of bases went through; a batch, a record, the fingerprint's 1 MB read stay
