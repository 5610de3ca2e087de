"""benchmarks/bench_gpu.py runs (on CPU, tiny config) and reports both sides and their ratio; on a GPU
machine the same script measures cuDNN + bf16."""

import importlib.util
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def test_bench_gpu_smoke_on_cpu(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_gpu", REPO / "benchmarks/bench_gpu.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    words = ["romeo", "juliet", "thou", "art", "fair", "night"]
    (tmp_path / "corpus.txt").write_text(" ".join(np.random.default_rng(0).choice(words, 3000)) + "\n")
    text = bench.main(
        [
            "--device",
            "cpu",
            "--profile",
            "fast",
            "--steps",
            "8",
            "--rounds",
            "1",
            "--set",
            f"data.init_args.source={tmp_path / 'corpus.txt'}",
            "--set",
            f"data.init_args.prepared_dir={tmp_path / 'prep'}",
            "--out",
            str(tmp_path / "gpu.md"),
        ]
    )
    ratio = float(text.split("seqpipe / plain (target >= 0.9x) | ")[1].split("x")[0])
    assert 0.05 < ratio < 20 and "tokens/s" in text and (tmp_path / "gpu.md").exists()
