"""seqpipe behaves like a library: cheap imports, no output on stdout, no process-wide settings changed."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

SRC = Path(__file__).resolve().parents[2] / "src"


def test_importing_seqpipe_and_a_datamodule_loads_neither_dvc_nor_mlflow():
    code = (
        "import sys, seqpipe, seqpipe.cli\n"
        "from seqpipe.data import TextDataModule\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dvc', 'mlflow')))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().replace("'", '"')) == []


def test_a_preprocess_prints_nothing_on_stdout(tmp_path: Path, capsys, caplog):
    from seqpipe.data import TextDataModule

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("to be or not to be, that is the question.\n" * 200)
    with caplog.at_level(logging.INFO, logger="seqpipe"):
        dm = TextDataModule(source=str(corpus), prepared_dir=str(tmp_path / "prep"))
        dm.prepare_data()
        dm.setup()
    assert dm.store.meta["records"] > 0
    assert capsys.readouterr().out == ""
    assert not logging.getLogger().handlers or all(
        type(h).__module__.startswith("_pytest") for h in logging.getLogger().handlers
    )  # no basicConfig


def test_the_library_logs_through_the_seqpipe_logger(tmp_path: Path, capsys, caplog):
    from seqpipe.domains.audio.source import SkipLog

    with caplog.at_level(logging.INFO, logger="seqpipe"):
        SkipLog(strict=False).bad(tmp_path / "x.wav", "zero-length file", "fix it")
    assert capsys.readouterr().out == ""
    [rec] = [r for r in caplog.records if r.name.startswith("seqpipe")]
    assert rec.levelno == logging.WARNING and "x.wav: zero-length file" in rec.getMessage()


def test_the_cli_shows_log_records_on_stderr_as_before(capsys):
    from seqpipe.cli import configure_logging

    configure_logging()
    logging.getLogger("seqpipe.stages").info("prepared %s", "x")
    logging.getLogger("seqpipe.stages").warning("plot skipped: %s", "why")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "[seqpipe] prepared x\n[seqpipe] warning: plot skipped: why\n"


def test_plotting_leaves_the_matplotlib_backend_alone(tmp_path: Path):
    import matplotlib

    from seqpipe.domains.dna.task import plot_roc

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        import matplotlib.pyplot as plt

        figures = plt.get_fignums()
        plot_roc({"m": (np.array([0.0, 0.5, 1.0]), np.array([0.0, 0.8, 1.0]))}, tmp_path / "roc.png", "roc")
        assert matplotlib.get_backend() == "svg"
        assert plt.get_fignums() == figures  # no pyplot figure left open
        assert (tmp_path / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        matplotlib.use(before)


def test_progress_bars_show_on_request_and_never_change_the_items(monkeypatch, capsys) -> None:
    from seqpipe.progress import progress

    monkeypatch.setenv("SEQPIPE_PROGRESS", "1")
    assert list(progress(iter(range(5)), "counting", total=5)) == [0, 1, 2, 3, 4]
    err = capsys.readouterr().err
    assert "[seqpipe] counting" in err and "/5" in err
    monkeypatch.setenv("SEQPIPE_PROGRESS", "0")
    assert list(progress(range(3), "quiet")) == [0, 1, 2] and capsys.readouterr().err == ""
