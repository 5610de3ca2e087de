"""benchmarks/bench_gpu.py: without CUDA `make bench` reports it skipped (one row, nothing run); on the CPU with a
tiny config the measurement reports both sides over the same batches and a ratio that is their quotient."""

import importlib
import shutil
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))  # benchmarks/ is scripts, not a package
    return importlib.import_module("bench_gpu")


def test_gpu_benchmark_skips_without_cuda_and_the_table_says_so(bench, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(bench, "measure", lambda *a, **k: pytest.fail("measured without a GPU"))
    res = bench.run(quick=True)
    assert res.name == "gpu" and res.rows == [] and "no CUDA device" in res.skipped
    harness = importlib.import_module("harness")
    table = harness.report([res], "make bench", {}, "note")
    assert "| gpu | skipped | no CUDA device (torch.cuda.is_available() is False) |" in table.splitlines()


def test_gpu_measurement_on_cpu_reports_both_sides_and_their_quotient(bench, tmp_path):
    words = ["romeo", "juliet", "thou", "art", "fair", "night"]
    (tmp_path / "corpus.txt").write_text(" ".join(np.random.default_rng(0).choice(words, 3000)) + "\n")
    sets = (f"data.init_args.source={tmp_path / 'corpus.txt'}", f"data.init_args.prepared_dir={tmp_path / 'prep'}")
    res = bench.measure("cpu", profile="fast", overrides=sets, steps=8, rounds=1, crnns=())
    rows = dict(res.rows)
    assert rows["device"] == "CPU, 32-bit"
    plain = float(rows["text LSTM (pipelines/text/lstm-gpu.yaml), plain PyTorch"].split()[0].replace(",", ""))
    light = float(rows["the same through seqpipe/Lightning"].split()[0].replace(",", ""))
    assert plain > 0 and light > 0
    ratio = float(rows["seqpipe / plain tokens/s (target >= 0.9x)"].rstrip("x"))
    assert ratio == pytest.approx(light / plain, abs=0.01)
    assert len(res.rows) == 4  # no CRNN asked for, none reported


def test_crnn_epoch_without_a_prepared_store_is_reported_skipped(bench, monkeypatch, tmp_path):
    monkeypatch.setattr(bench, "ROOT", tmp_path)  # no pipelines' stores under it
    shutil.copytree(REPO / "pipelines", tmp_path / "pipelines")
    assert bench.crnn_epoch_seconds("pipelines/dna/crnn.yaml", "default", "cpu") == "skipped (no prepared store)"
