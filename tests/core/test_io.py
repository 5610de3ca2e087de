"""seqpipe.io: the one atomic write (files and folders) the pipeline, stores and generators share."""

from __future__ import annotations

import json
import os
import stat

import pytest

from seqpipe import io


def test_write_json_bytes_are_json_dumps_plus_newline(tmp_path):
    doc = {"b": 1.5, "a": [1, 2], "é": None}
    io.write_json(tmp_path / "x.json", doc, indent=2)
    assert (tmp_path / "x.json").read_bytes() == (json.dumps(doc, indent=2) + "\n").encode()
    io.write_json(tmp_path / "y.json", doc, indent=1, sort_keys=True)
    assert (tmp_path / "y.json").read_text() == '{\n "a": [\n  1,\n  2\n ],\n "b": 1.5,\n "\\u00e9": null\n}\n'


def test_write_text_replaces_whole_with_umask_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        io.write_text(tmp_path / "sub" / "f.txt", "first\n")
        io.write_text(tmp_path / "sub" / "f.txt", "second\n")
    finally:
        os.umask(old)
    f = tmp_path / "sub" / "f.txt"
    assert f.read_text() == "second\n"
    assert stat.S_IMODE(f.stat().st_mode) == 0o640
    assert [p.name for p in f.parent.iterdir()] == ["f.txt"]  # no temporary left


def test_failed_write_keeps_old_file_and_removes_temporary(tmp_path):
    io.write_bytes(tmp_path / "f.bin", b"old")

    def half(f):
        f.write(b"ne")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        io.write_with(tmp_path / "f.bin", half)
    assert (tmp_path / "f.bin").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_publish_dir_swaps_folder_whole(tmp_path):
    final = tmp_path / "store"
    final.mkdir()
    (final / "old.txt").write_text("old")
    old = os.umask(0o022)
    try:
        tmp = io.temp_dir(final)
    finally:
        os.umask(old)
    assert tmp.parent == tmp_path and tmp.name.startswith(".store.tmp-")
    assert stat.S_IMODE(tmp.stat().st_mode) == 0o755
    (tmp / "new.txt").write_text("new")
    assert io.publish_dir(tmp, final) == final
    assert [p.name for p in final.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["store"]  # temporary and old folder gone
