"""Integrity and poison: each test reproduces a failure a probe found and checks the refusal that replaces it.

A same-size edit of a store's .bin passed the size check and changed the numbers; a flipped checkpoint byte went
unnoticed outside `load_model`; a float WAV scaled by 1e30 made the normalization NaN and the fit train on it;
`predict` printed NaN as non-standard JSON. Each is now a one-line error naming the file (docs/reliability.md).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from helpers import text_experiment, write_corpus
from seqpipe.cli import main
from seqpipe.data import store as store_module
from seqpipe.data.store import PreparedStore, StoreWriter
from seqpipe.domains.audio import source as audio_source
from seqpipe.domains.audio.checks import check_finite
from seqpipe.domains.audio.prepare import prepare_audio
from seqpipe.errors import SeqpipeError
from seqpipe.guards import NonFiniteLoss


# -- stores -----------------------------------------------------------------------------------
def small_store(path: Path) -> Path:
    with StoreWriter(path, domain="test") as w:
        w.append("data", np.arange(1000, dtype=np.int32))
        w.append("data", np.arange(500, dtype=np.int32))
        w.set_index(offset=[0, 1000], length=[1000, 500], split=[0, 1])
        w.commit({"fingerprint": "f"})
    return path


def edit_in_place(file: Path, at: int, n: int) -> None:
    """Overwrite ``n`` bytes at ``at`` with other bytes: the file keeps its size."""
    data = bytearray(file.read_bytes())
    data[at : at + n] = bytes(255 - b for b in data[at : at + n])
    file.write_bytes(bytes(data))


def test_a_store_records_each_array_s_sha256_as_written(tmp_path: Path) -> None:
    store = small_store(tmp_path / "s")
    meta = json.loads((store / "meta.json").read_text())
    data = np.concatenate([np.arange(1000), np.arange(500)]).astype(np.int32).tobytes()
    assert meta["arrays"]["data"] == {"dtype": "<i4", "shape": [1500], "sha256": hashlib.sha256(data).hexdigest()}
    assert (store / "data.bin").read_bytes() == data
    assert meta["fingerprint"] == "f"  # the fingerprint is the caller's, untouched by the hash


def test_a_same_size_edit_is_refused_at_open_and_by_verify(tmp_path: Path, capsys) -> None:
    store = small_store(tmp_path / "s")
    assert main(["verify", str(store)]) == 0
    assert capsys.readouterr().out == f"ok        {store / 'data.bin'}: sha256 matches meta.json\n"
    edit_in_place(store / "data.bin", 2000, 100)
    with pytest.raises(SeqpipeError, match=r"data\.bin's bytes differ from the SHA-256 meta\.json recorded") as err:
        PreparedStore.open(store)
    assert str(store / "data.bin") in str(err.value) and "\n" not in str(err.value)
    assert main(["verify", str(store)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith(f"MISMATCH  {store / 'data.bin'}: bytes differ")


def test_a_large_store_is_checked_by_verify_only(tmp_path: Path, monkeypatch) -> None:
    store = small_store(tmp_path / "s")
    edit_in_place(store / "data.bin", 0, 4)
    monkeypatch.setattr(store_module, "VERIFY_AT_OPEN_BYTES", 5999)  # the store holds 6000 bytes
    assert PreparedStore.open(store).arrays["data"][0] != 0  # opened unchecked: over the size
    with pytest.raises(SeqpipeError, match="differ from the SHA-256"):
        PreparedStore.open(store, verify=True)


def test_an_older_store_without_hashes_opens_and_verify_says_unchecked(tmp_path: Path, capsys, caplog) -> None:
    store = small_store(tmp_path / "s")
    meta = json.loads((store / "meta.json").read_text())
    del meta["arrays"]["data"]["sha256"]
    (store / "meta.json").write_text(json.dumps(meta))
    with caplog.at_level("DEBUG", logger="seqpipe.data.store"):
        assert PreparedStore.open(store).meta["records"] == 2
    assert any("no recorded SHA-256" in r.getMessage() for r in caplog.records)
    assert main(["verify", str(tmp_path)]) == 0  # a folder of stores
    assert capsys.readouterr().out.startswith(f"unchecked {store / 'data.bin'}: meta.json records no SHA-256")


def error_line(stderr: str) -> str:
    """seqpipe's one error line (MLflow may log lines of its own to stderr)."""
    [line] = [x for x in stderr.splitlines() if x.startswith("seqpipe: error:")]
    return line


def text_config(tmp: Path, name: str = "tiny", fit: dict | None = None, max_steps: int = 6) -> list[str]:
    write_corpus(tmp, 3000)
    cfg = {
        "name": name,
        **text_experiment("data/prepared/tiny", seq_len=16, batch_size=8, cell="gru", hidden_size=16),
        "trainer": {
            "max_steps": max_steps,
            "val_check_interval": 3,
            "limit_val_batches": 1,
            "enable_progress_bar": False,
        },
        "fit": {"grad_every_n_steps": 100, **(fit or {})},
    }
    (tmp / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
    return ["--config", f"{name}.yaml"]


def test_an_edited_text_store_is_refused_when_a_stage_sets_it_up(in_tmp: Path, capsys) -> None:
    """The probe: 5,000 bytes of tokens.bin overwritten moved test_bpc with the same fingerprint."""
    cfg = text_config(in_tmp)
    assert main(["preprocess", *cfg]) == 0
    tokens = in_tmp / "data/prepared/tiny/tokens.bin"
    size = tokens.stat().st_size
    edit_in_place(tokens, 100, 5000)
    assert tokens.stat().st_size == size
    capsys.readouterr()
    assert main(["fit", *cfg]) == 2
    err = error_line(capsys.readouterr().err)
    assert "tokens.bin" in err and "differ from the SHA-256" in err
    assert not (in_tmp / "models" / "tiny").exists()


# -- checkpoints ------------------------------------------------------------------------------
def test_verify_finds_a_flipped_checkpoint_byte(in_tmp: Path, capsys) -> None:
    assert main(["fit", *text_config(in_tmp)]) == 0
    model = in_tmp / "models" / "tiny"
    capsys.readouterr()
    assert main(["verify", str(model), "data/prepared/tiny"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"ok        {model / 'best.ckpt'}: sha256 matches checksums.json" and len(out) == 2
    data = bytearray((model / "best.ckpt").read_bytes())
    data[len(data) // 2] ^= 0x01
    (model / "best.ckpt").write_bytes(bytes(data))
    assert main(["verify", "models"]) == 1
    assert capsys.readouterr().out.startswith(f"MISMATCH  {Path('models/tiny/best.ckpt')}: bytes differ")
    assert main(["verify", str(model / "last.ckpt")]) == 0  # not recorded: said, not failed
    assert capsys.readouterr().out.startswith("unchecked")
    assert main(["verify", "nowhere"]) == 2


# -- training ---------------------------------------------------------------------------------
def test_a_nan_loss_for_n_steps_stops_the_fit_and_publishes_nothing(in_tmp: Path, monkeypatch, capsys) -> None:
    from seqpipe.models.recurrent import RecurrentModel

    real = RecurrentModel.loss_and_metrics

    def poisoned(self, output, targets, smoothing=0.0):
        loss, metrics = real(self, output, targets, smoothing)
        return loss * float("nan"), metrics

    monkeypatch.setattr(RecurrentModel, "loss_and_metrics", poisoned)
    cfg = text_config(in_tmp, fit={"max_nonfinite_steps": 2}, max_steps=50)
    assert main(["fit", *cfg]) == 2
    err = error_line(capsys.readouterr().err)
    assert "NaN/inf for 2 consecutive steps (up to step 2)" in err and "tiny.yaml" in err
    assert not (in_tmp / "models" / "tiny").exists()


def _steps(guard: NonFiniteLoss, losses: list[float]) -> int:
    """Feed ``losses`` to the guard; the number of steps taken before it stopped the fit."""
    trainer = SimpleNamespace(global_step=0, strategy=SimpleNamespace(reduce_boolean_decision=lambda d, all: d))
    for i, loss in enumerate(losses):
        trainer.global_step = i + 1
        try:
            guard.on_train_batch_end(trainer, None, {"loss": torch.tensor(loss)}, None, i)
        except SeqpipeError:
            return i + 1
    return len(losses)


def test_the_guard_counts_consecutive_steps_and_resets_on_a_finite_loss() -> None:
    nan, inf = float("nan"), float("inf")
    assert _steps(NonFiniteLoss(3), [1.0, nan, inf, nan, nan, nan, nan, nan]) == 6  # 3 bad by step 4, read at 6
    assert _steps(NonFiniteLoss(3), [nan, nan, 1.0] * 4) == 12  # never 3 in a row: trains on
    assert _steps(NonFiniteLoss(20), [1.0] * 100) == 100
    with pytest.raises(SeqpipeError, match="max_nonfinite_steps must be a whole number >= 1"):
        NonFiniteLoss.from_fit({"max_nonfinite_steps": 0}, "x.yaml")


# -- audio ------------------------------------------------------------------------------------
def tone_folder(root: Path) -> Path:
    """Two labels x 4 speakers of 0.3 s float WAV tones (Speech Commands names)."""
    t = np.arange(4800) / 16000
    for label, freq in (("high", 880.0), ("low", 220.0)):
        (root / label).mkdir(parents=True)
        for k in range(4):
            wave = (0.2 + 0.05 * k) * np.sin(2 * np.pi * freq * t)
            sf.write(root / label / f"s{k}_nohash_0.wav", wave.astype(np.float32), 16000, subtype="FLOAT")
    return root


def poison(root: Path, scale: float = 1.0, nan: bool = False) -> Path:
    bad = root / "low" / "s1_nohash_0.wav"
    wave, sr = sf.read(bad, dtype="float32")
    wave = wave * np.float32(scale)
    if nan:
        wave[100] = np.nan
    sf.write(bad, wave, sr, subtype="FLOAT")
    return bad


def prepare(root: Path, out: Path) -> PreparedStore:
    return prepare_audio(root, out, val_fraction=0.25, test_fraction=0.25)


def test_a_1e30_scaled_float_wav_is_refused_naming_the_file(tmp_path: Path) -> None:
    bad = poison(tone_folder(tmp_path / "src"), scale=1e30)
    with pytest.raises(
        SeqpipeError, match=r"implausible peak 2\.5e\+29 after decoding .*more than 1000 is refused"
    ) as err:
        prepare(tmp_path / "src", tmp_path / "prep")
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "prep").exists()


def test_nan_audio_is_refused_naming_the_file(tmp_path: Path) -> None:
    bad = poison(tone_folder(tmp_path / "src"), nan=True)
    with pytest.raises(SeqpipeError, match="audio holds NaN/inf samples") as err:
        prepare(tmp_path / "src", tmp_path / "prep")
    assert str(bad) in str(err.value)


def test_features_are_the_last_gate_before_the_store(tmp_path: Path, monkeypatch) -> None:
    """Without the decoding rule, the 1e30 clip's features overflow: the store builder names the clip, where
    before it wrote NaN normalization statistics."""
    monkeypatch.setattr(audio_source, "MAX_PEAK", float("inf"))
    bad = poison(tone_folder(tmp_path / "src"), scale=1e30)
    with pytest.raises(SeqpipeError, match="log-mel features hold .* non-finite value") as err:
        prepare(tmp_path / "src", tmp_path / "prep")
    assert str(bad) in str(err.value)
    ok = [np.zeros((3, 2))]
    with pytest.raises(SeqpipeError, match="normalization mean/std over the train clips is not finite"):
        check_finite(ok, [bad], {"mean": [np.nan, 0.0], "std": [1.0, 1.0]})


@pytest.fixture
def audio_model(in_tmp: Path) -> Path:
    """A tiny GRU trained 2 steps on the tone folder: models/tones/best.ckpt."""
    tone_folder(in_tmp / "tones")
    cfg = {
        "name": "tones",
        "domain": "audio",
        "data": {
            "class_path": "seqpipe.domains.audio.AudioDataModule",
            "init_args": {
                "source": "tones",
                "prepared_dir": "data/prepared/tones",
                "n_mels": 8,
                "max_seconds": 0.3,
                "val_fraction": 0.25,
                "test_fraction": 0.25,
                "batch_size": 2,
            },
        },
        "model": {
            "class_path": "seqpipe.models.RecurrentModel",
            "init_args": {"cell": "gru", "hidden_size": 8, "num_layers": 1, "pooling": "mean"},
        },
        "trainer": {"max_steps": 2, "limit_val_batches": 1, "accelerator": "cpu", "enable_progress_bar": False},
        "fit": {"grad_every_n_steps": 100},
    }
    (in_tmp / "tones.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["fit", "--config", "tones.yaml"]) == 0
    return in_tmp / "models" / "tones" / "best.ckpt"


def test_predict_on_a_poisoned_input_prints_no_nan(audio_model: Path, in_tmp: Path, monkeypatch, capsys) -> None:
    good = in_tmp / "tones" / "high" / "s0_nohash_0.wav"
    capsys.readouterr()
    assert main(["predict", "--ckpt", str(audio_model), str(good)]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in ("high", "low")
    bad = poison(in_tmp / "tones", scale=1e30)
    assert main(["predict", "--ckpt", str(audio_model), str(bad)]) == 2  # refused where it is decoded
    out, err = capsys.readouterr()
    assert out == "" and "implausible peak" in error_line(err) and str(bad) in error_line(err)
    monkeypatch.setattr(audio_source, "MAX_PEAK", float("inf"))  # past decoding: predict itself refuses
    assert main(["predict", "--ckpt", str(audio_model), str(good), str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "prediction holds NaN/inf" in error_line(err) and str(bad) in error_line(err)
