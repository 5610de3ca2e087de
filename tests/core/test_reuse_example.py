"""docs/reuse_datamodule.py: a seqpipe datamodule driving a LightningModule written outside seqpipe."""

import importlib.util
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "reuse_datamodule.py"


def test_reuse_example_trains(in_tmp):
    rng = np.random.default_rng(0)
    (in_tmp / "c.txt").write_text(" ".join(rng.choice(["abc", "abd", "xyz", "xyw"], 8000)))
    spec = importlib.util.spec_from_file_location("reuse_example", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    result = mod.main(["--source", "c.txt", "--prepared-dir", "prep", "--steps", "60"])
    assert result["after"] < 0.6 * result["before"]
    assert not (in_tmp / "mlruns").exists()  # no MLflow involved
