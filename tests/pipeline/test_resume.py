"""Kill a training process with SIGKILL after its first checkpoint, resume it, and get the weights and
metrics of an uninterrupted run of the same config (the text LSTM with TBPTT, dropout and a moving average of
its weights, and a CRNN classifier with reverse-complement augmentation resumed mid-epoch)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from helpers import text_experiment, write_corpus
from seqpipe.cli import main


def text_case(d: Path) -> dict:
    write_corpus(d, 20000)
    return {
        **text_experiment(
            "prep", seq_len=16, batch_size=8, cell="lstm", hidden_size=32, num_layers=2, dropout=0.2, embedding_dim=8
        ),
        "trainer": {"max_steps": 500, "val_check_interval": 100, "limit_val_batches": 4},
        "fit": {"grad_every_n_steps": 50, "checkpoint_every_n_steps": 13, "ema_decay": 0.95},
    }


def dna_case(d: Path) -> dict:
    rng = np.random.default_rng(1)
    recs = []
    for i in range(600):
        s = "".join(rng.choice(list("ACGT"), 60))
        recs.append(f">r{i} label={i % 2}\n{s[:20] + 'TATAAT' + s[26:] if i % 2 else s}\n")
    (d / "x.fa").write_text("".join(recs))
    return {
        "domain": "dna",
        "data": {
            "class_path": "seqpipe.domains.dna.DNADataModule",
            "init_args": {"source": "x.fa", "labels": None, "prepared_dir": "prep", "rc_augment": 0.5, "batch_size": 8},
        },
        "model": {
            "class_path": "seqpipe.models.crnn.CRNN",
            "init_args": {
                "conv_channels": [16],
                "kernel_size": 7,
                "time_pool": [2],
                "cell": "lstm",
                "hidden_size": 16,
                "bidirectional": True,
                "dropout": 0.3,
            },
        },
        "trainer": {"max_epochs": 6, "limit_val_batches": 4},
        "fit": {"grad_every_n_steps": 100000, "checkpoint_every_n_steps": 11},
    }


def write(d: Path, name: str, cfg: dict) -> str:
    cfg = {
        "name": name,
        "seed": 5,
        **cfg,
        "trainer": {**cfg["trainer"], "accelerator": "cpu", "enable_progress_bar": False},
    }
    (d / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
    return f"{name}.yaml"


def weights(d: Path, name: str) -> dict[str, torch.Tensor]:
    """last.ckpt's weights: with fit.ema_decay the average ("state_dict") and the raw ones beside it."""
    ckpt = torch.load(d / f"models/{name}/last.ckpt", map_location="cpu", weights_only=False)
    raw = {f"raw.{k}": w for k, w in ckpt.get("current_model_state", {}).items()}
    return {**ckpt["state_dict"], **raw}


@pytest.mark.slow
@pytest.mark.parametrize("make", [text_case, dna_case], ids=["text-lstm-tbptt", "dna-crnn"])
def test_killed_run_resumes_to_the_uninterrupted_result(make, in_tmp: Path):
    cfg = make(in_tmp)
    assert main(["fit", "--config", write(in_tmp, "whole", cfg)]) == 0

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "seqpipe", "fit", "--config", write(in_tmp, "broken", cfg)],
        cwd=in_tmp,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    last = in_tmp / "models/.broken.tmp/last.ckpt"
    deadline = time.time() + 300
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.exists() and not (in_tmp / "models/broken").exists(), "the run finished before it could be killed"
    killed_at = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    run_id = json.loads((in_tmp / "models/.broken.tmp/run_state.json").read_text())["mlflow_run_id"]

    assert main(["fit", "--config", "broken.yaml", "--resume"]) == 0
    whole, resumed = weights(in_tmp, "whole"), weights(in_tmp, "broken")
    assert any(k.startswith("raw.") for k in whole) == (make is text_case)  # the text case averages its weights
    for k in whole:
        assert torch.equal(whole[k], resumed[k]), f"{k} differs after resuming from step {killed_at}"
    a = json.loads((in_tmp / "models/whole/run.json").read_text())
    b = json.loads((in_tmp / "models/broken/run.json").read_text())
    assert b["global_steps"] == a["global_steps"] and b["best_score"] == a["best_score"]
    assert a == {**b, "experiment": "whole", "best_ckpt": a["best_ckpt"]}  # the model record: no trace of the crash
    training = json.loads((in_tmp / "models/broken.training.json").read_text())
    assert training["mlflow_run_id"] == run_id and training["resumed_from"].endswith("last.ckpt")
    curve_a = (in_tmp / "models/whole/learning_curve.csv").read_text()
    assert (in_tmp / "models/broken/learning_curve.csv").read_text() == curve_a


def test_resume_errors_and_one_run_at_a_time(in_tmp: Path, capsys):
    cfg = text_case(in_tmp)
    write(in_tmp, "solo", cfg)
    assert main(["fit", "--config", "solo.yaml", "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert main(["fit", "--config", "solo.yaml", "--resume", "nope/last.ckpt"]) == 2
    assert "nope/last.ckpt" in capsys.readouterr().err
    assert main(["fit", "--config", "solo.yaml", "--set", "name=../../escape"]) == 2
    assert "not a plain name" in capsys.readouterr().err
    import fcntl

    (in_tmp / "models").mkdir(exist_ok=True)
    with open(in_tmp / "models/.solo.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(["fit", "--config", "solo.yaml"]) == 2
        assert "another `seqpipe fit` of solo is running" in capsys.readouterr().err


def test_outputs_that_are_not_seqpipes_are_never_replaced(in_tmp: Path):
    """A prepared_dir that is a user's folder, or the raw source itself, is refused before anything is deleted."""
    from seqpipe.data import TextDataModule
    from seqpipe.errors import SeqpipeError

    text_case(in_tmp)
    mine = in_tmp / "notes"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    with pytest.raises(SeqpipeError, match="not a seqpipe prepared store"):
        TextDataModule(source="corpus.txt", prepared_dir=str(mine), rebuild=True).prepare_data()
    assert (mine / "keep.txt").read_text() == "mine"
    (in_tmp / "raw").mkdir()
    (in_tmp / "raw/corpus.txt").write_text((in_tmp / "corpus.txt").read_text())
    with pytest.raises(SeqpipeError, match="is the source"):
        TextDataModule(source="raw/corpus.txt", prepared_dir="raw", rebuild=True).prepare_data()
    assert (in_tmp / "raw/corpus.txt").exists()
    stale = in_tmp / ".prep.tmp-999999999-abc"  # a writer that died: cleaned up by the next one
    stale.mkdir()
    dm = TextDataModule(source="corpus.txt", prepared_dir="prep", rebuild=True)
    dm.prepare_data()
    assert not stale.exists() and (in_tmp / "prep/meta.json").exists()
    assert oct((in_tmp / "prep").stat().st_mode & 0o777) == oct(0o777 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_crnn_on_a_sequence_shorter_than_its_pooling_is_a_clear_error():
    from seqpipe.data.spec import DataSpec
    from seqpipe.errors import SeqpipeError
    from seqpipe.models.crnn import CRNN

    spec = DataSpec(input="features", target="class", feature_dim=40, num_classes=3).to_dict()
    m = CRNN(spec=spec, conv_channels=[4, 4], time_pool=[2, 2])
    with pytest.raises(SeqpipeError, match="shorter than the CRNN's time pooling"):
        m(torch.zeros(1, 3, 40), torch.tensor([3]))
