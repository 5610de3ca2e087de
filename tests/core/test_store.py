"""The prepared store: atomic publish, memory-mapped reads, schema checks."""

import json

import numpy as np
import pytest

from seqpipe.data.store import PreparedStore, StoreWriter
from seqpipe.errors import SeqpipeError


def write(path, values, meta=None):
    with StoreWriter(path, domain="test") as w:
        for chunk in np.array_split(np.asarray(values, dtype=np.uint8), 3):
            w.append("tokens", chunk)
        w.set_index(offset=[0], length=[len(values)], split=[0])
        w.commit({"fingerprint": "x", **(meta or {})})


def test_roundtrip_is_memory_mapped(tmp_path):
    write(tmp_path / "s", list(range(10)))
    st = PreparedStore.open(tmp_path / "s")
    assert isinstance(st.arrays["tokens"], np.memmap)
    assert st.arrays["tokens"].tolist() == list(range(10))
    assert st.meta["arrays"]["tokens"]["shape"] == [10]
    assert st.records("train").tolist() == [0] and st.records("test").tolist() == []


def test_interrupted_write_keeps_previous_store(tmp_path):
    write(tmp_path / "s", [1, 2, 3])
    with pytest.raises(RuntimeError):
        with StoreWriter(tmp_path / "s", domain="test") as w:
            w.append("tokens", np.array([9, 9], dtype=np.uint8))
            raise RuntimeError("killed mid-preprocess")
    assert PreparedStore.open(tmp_path / "s").arrays["tokens"].tolist() == [1, 2, 3]
    assert [p.name for p in tmp_path.iterdir()] == ["s"]  # no temporary leftovers


def test_interrupted_first_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with StoreWriter(tmp_path / "s", domain="test") as w:
            w.append("tokens", np.array([1], dtype=np.uint8))
            raise RuntimeError
    assert list(tmp_path.iterdir()) == []


def test_interrupted_write_removes_the_folders_it_made(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(RuntimeError):
        with StoreWriter(tmp_path / "a" / "b" / "c" / "s", domain="test") as w:
            w.append("tokens", np.array([1], dtype=np.uint8))
            raise RuntimeError("a streamed read failed half way")
    assert list(tmp_path.iterdir()) == [tmp_path / "a"] and list((tmp_path / "a").iterdir()) == []


def test_rewrite_replaces_whole_store(tmp_path):
    write(tmp_path / "s", [1, 2, 3])
    write(tmp_path / "s", [4, 5])
    assert PreparedStore.open(tmp_path / "s").arrays["tokens"].tolist() == [4, 5]


def test_chunk_dtype_mismatch_is_an_error(tmp_path):
    with StoreWriter(tmp_path / "s", domain="test") as w:
        w.append("x", np.zeros(3, np.uint8))
        with pytest.raises(SeqpipeError, match="expected"):
            w.append("x", np.zeros(3, np.float32))


def test_missing_store_names_the_fix(tmp_path):
    with pytest.raises(SeqpipeError, match="seqpipe preprocess"):
        PreparedStore.open(tmp_path / "nope")


def test_schema_version_checked(tmp_path):
    write(tmp_path / "s", [1])
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    meta["schema_version"] = 999
    (tmp_path / "s" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(SeqpipeError, match="schema version 999"):
        PreparedStore.open(tmp_path / "s")
