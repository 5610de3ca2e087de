"""Generator --out folders: replaced whole, only when a seqpipe generator wrote them, never the project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seqpipe.data.generated import GENERATION_FILE, GeneratedFolder, check_out_dir, is_generated
from seqpipe.domains.dna.motifs import MotifTaskConfig, write_dataset
from seqpipe.domains.stocks.source import export_embedded
from seqpipe.errors import SeqpipeError


def test_export_writes_a_marked_folder_and_replaces_it_whole(tmp_path: Path) -> None:
    out = tmp_path / "raw" / "stocks"
    paths = export_embedded(out)
    assert {"AAPL.csv", "IBM.csv", "SP500.csv"} <= {p.name for p in paths} and all(p.exists() for p in paths)
    info = json.loads((out / GENERATION_FILE).read_text())
    assert info["generator"] == "seqpipe.domains.stocks.source" and is_generated(out)
    (out / "stale.csv").write_text("Date,Close\n")  # left from an earlier run: gone after the rerun
    first = (out / "IBM.csv").read_bytes()
    export_embedded(out)
    assert not (out / "stale.csv").exists() and (out / "IBM.csv").read_bytes() == first
    assert [p.name for p in out.parent.iterdir()] == ["stocks"]  # no temporary or old folder left


def test_a_folder_no_generator_wrote_is_refused_and_kept(tmp_path: Path) -> None:
    mine = tmp_path / "my_prices"
    mine.mkdir()
    (mine / "AAPL.csv").write_text("my own data\n")
    with pytest.raises(SeqpipeError, match="refusing to replace a folder no seqpipe generator wrote") as err:
        export_embedded(mine)
    assert str(mine) in str(err.value) and "\n" not in str(err.value)
    assert (mine / "AAPL.csv").read_text() == "my own data\n"
    (mine / GENERATION_FILE).write_text('{"generator": "someone.else"}')  # a marker must name a seqpipe generator
    with pytest.raises(SeqpipeError, match="no seqpipe generator wrote"):
        write_dataset(MotifTaskConfig(n=20), mine)
    afile = tmp_path / "a_file"
    afile.write_text("x")
    with pytest.raises(SeqpipeError, match="not a folder"):
        check_out_dir(afile)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_out_dir(empty) == empty  # an empty folder is fine to fill


def test_the_project_and_the_package_are_never_an_out_folder(tmp_path: Path, monkeypatch) -> None:
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / GENERATION_FILE).write_text(
        '{"generator": "seqpipe.domains.stocks.source"}'
    )  # even if it looks generated
    monkeypatch.chdir(project / "data")
    for out in (".", "..", str(project)):
        with pytest.raises(SeqpipeError, match="refusing to replace the working folder"):
            check_out_dir(out)
    import seqpipe

    with pytest.raises(SeqpipeError, match="the seqpipe package"):
        check_out_dir(Path(seqpipe.__file__).parent)
    assert (project / "data").is_dir() and (project / GENERATION_FILE).exists()


def test_a_failure_inside_leaves_the_old_folder_whole(tmp_path: Path) -> None:
    out = write_dataset(MotifTaskConfig(n=20, seed=1), tmp_path / "dna")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(RuntimeError):
        with GeneratedFolder(out, "seqpipe.domains.dna.motifs") as folder:
            (folder.path / "sequences.fa").write_text(">half\nAC")
            raise RuntimeError("disk full")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["dna"]


def test_published_folder_gets_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        out = write_dataset(MotifTaskConfig(n=20), tmp_path / "dna")
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o755 and (out / "labels.csv").stat().st_mode & 0o777 == 0o644


def test_generator_command_line_error_is_one_line(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    r = subprocess.run(
        [sys.executable, "-m", "seqpipe.domains.stocks.source", str(mine)], capture_output=True, text=True, cwd=tmp_path
    )
    assert r.returncode == 2 and r.stderr.startswith("seqpipe: error:") and r.stderr.count("\n") == 1
    assert (mine / "notes.txt").read_text() == "keep me"
