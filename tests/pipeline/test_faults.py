"""Faults in what surrounds a fit: damaged checkpoints, diverged training. Each one ends in a one-line
seqpipe error naming the file and the fix, and loses nothing that was published before."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from helpers import text_experiment, write_corpus
from seqpipe.cli import main
from seqpipe.errors import SeqpipeError


def _config(tmp: Path, name: str = "tiny", **model: object) -> Path:
    write_corpus(tmp, 3000)
    cfg = {
        "name": name,
        **text_experiment("data/prepared/tiny", seq_len=16, batch_size=8, cell="gru", hidden_size=16, **model),
        "trainer": {"max_steps": 6, "val_check_interval": 3, "limit_val_batches": 1, "enable_progress_bar": False},
        "fit": {"grad_every_n_steps": 3},
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny published text model (models/tiny/), trained once for the tests below to damage copies of."""
    import os

    tmp = tmp_path_factory.mktemp("faults")
    old = Path.cwd()
    os.chdir(tmp)
    try:
        _config(tmp)
        assert main(["fit", "--config", "tiny.yaml"]) == 0
    finally:
        os.chdir(old)
    return tmp / "models" / "tiny"


def _copy(model_dir: Path, tmp: Path) -> Path:
    out = tmp / "models" / "copy"
    shutil.copytree(model_dir, out)
    return out


def test_a_published_checkpoint_records_its_hash_and_class(trained: Path) -> None:
    import torch

    from seqpipe.models.loading import CLASS_KEY, file_sha256

    assert json.loads((trained / "checksums.json").read_text()) == {"best.ckpt": file_sha256(trained / "best.ckpt")}
    assert "sha256" not in (trained / "run.json").read_text()  # run.json stays free of the checkpoint's paths
    ckpt = torch.load(trained / "best.ckpt", map_location="cpu", weights_only=True)
    assert ckpt[CLASS_KEY] == "seqpipe.models.recurrent.RecurrentModel"


def test_a_flipped_byte_is_refused_naming_the_file(trained: Path, tmp_path: Path) -> None:
    from seqpipe.models.loading import load_model

    d = _copy(trained, tmp_path)
    data = bytearray((d / "best.ckpt").read_bytes())
    data[len(data) // 2] ^= 0x01
    (d / "best.ckpt").write_bytes(bytes(data))
    with pytest.raises(SeqpipeError, match="differ from the SHA-256 recorded") as e:
        load_model(d / "best.ckpt")
    assert str(d / "best.ckpt") in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("keep", [0.5, 0.0])
def test_a_truncated_checkpoint_is_a_one_line_error(trained: Path, tmp_path: Path, keep: float) -> None:
    from seqpipe.models.loading import load_model

    d = _copy(trained, tmp_path)
    (d / "checksums.json").unlink()  # no recorded hash: the reader itself must refuse the file
    data = (d / "best.ckpt").read_bytes()
    (d / "best.ckpt").write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(SeqpipeError, match="cannot read the checkpoint") as e:
        load_model(d / "best.ckpt")
    assert "\n" not in str(e.value) and "retrain" in str(e.value)


def test_a_checkpoint_away_from_its_run_json_loads_as_its_class(trained: Path, tmp_path: Path) -> None:
    """MLflow's checkpoints/best.ckpt has no run.json beside it: the class inside the checkpoint is enough."""
    from seqpipe.models.loading import load_model

    lone = tmp_path / "best.ckpt"
    shutil.copy(trained / "best.ckpt", lone)
    assert type(load_model(lone)).__name__ == "RecurrentModel"


def test_a_checkpoint_naming_a_non_model_class_is_refused(trained: Path, tmp_path: Path) -> None:
    import torch

    from seqpipe.models.loading import CLASS_KEY, load_model

    ckpt = torch.load(trained / "best.ckpt", map_location="cpu", weights_only=True)
    ckpt[CLASS_KEY] = "subprocess.Popen"
    torch.save(ckpt, tmp_path / "evil.ckpt")
    with pytest.raises(SeqpipeError, match="not a LightningModule"):
        load_model(tmp_path / "evil.ckpt")


def test_a_diverged_fit_publishes_nothing_and_keeps_the_old_model(
    trained: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    from seqpipe.models.recurrent import RecurrentModel

    real = RecurrentModel.loss_and_metrics

    def diverged(self, output, targets, smoothing=0.0):  # what non-finite data or a runaway LR leads to
        loss, metrics = real(self, output, targets, smoothing)
        return loss * float("inf"), metrics

    monkeypatch.setattr(RecurrentModel, "loss_and_metrics", diverged)
    _config(tmp_path, name="copy")
    old = _copy(trained, tmp_path)
    before = (old / "best.ckpt").read_bytes()
    assert main(["fit", "--config", "copy.yaml"]) == 2
    assert "it is not published" in capsys.readouterr().err
    assert (old / "best.ckpt").read_bytes() == before
