"""Audio channel effects, augmented training copies and the channel-shifted test features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seqpipe.data.store import SPLIT_CODE, PreparedStore
from seqpipe.domains.audio.channel import (
    ChannelConfig,
    add_noise,
    apply_channel,
    augment_rng,
    augment_wave,
    channel_rng,
    mulaw,
    reverb,
    speed,
    telephone,
)
from seqpipe.domains.audio.datamodule import AudioDataModule
from seqpipe.domains.audio.features import FeatureConfig, log_mel
from seqpipe.domains.audio.prepare import prepare_audio
from seqpipe.domains.audio.source import crop, load_audio
from seqpipe.domains.audio.spoken_digits import generate_spoken_digits
from seqpipe.errors import SeqpipeError

SR = 16000
VOICES = ["en+f3", "en+m1", "en+klatt", "en+Andy", "en+whisper"]
WORDS = ("one", "two", "three")


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 voices x 3 words x 2 renditions in the Speech Commands layout."""
    out = tmp_path_factory.mktemp("audio_channel") / "digits"
    generate_spoken_digits(out, voices=VOICES, words=WORDS, renditions=2, seed=0)
    return out


def tone(freq: float, seconds: float = 0.5, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def band_energy(x: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    return float(spec[(f >= lo) & (f < hi)].sum())


# -- the effects ------------------------------------------------------------------------------
def test_telephone_band_removes_energy_above_4khz_and_below_300hz():
    x = tone(1000) + tone(6000) + tone(100)
    y = telephone(x, SR)
    assert len(y) == len(x) and y.dtype == np.float32
    assert band_energy(y, 4000, 8000) < 1e-4 * band_energy(x, 4000, 8000)  # the 6 kHz tone is gone
    assert band_energy(y, 0, 300) < 1e-6 * band_energy(x, 0, 300)  # and the 100 Hz hum
    assert band_energy(y, 900, 1100) > 0.9 * band_energy(x, 900, 1100)  # the 1 kHz tone passes


def test_reverb_lengthens_the_energy_decay():
    x = np.zeros(SR, np.float32)
    x[:1600] = tone(500, 0.1)  # a 100 ms burst, then silence
    y = reverb(x, 0.5, SR, np.random.default_rng(0))
    assert len(y) == len(x)
    tail = slice(3200, 8000)  # 100-400 ms after the burst ended
    assert np.sum(x[tail] ** 2) == 0 and np.sum(y[tail] ** 2) > 1e-3 * np.sum(y[:1600] ** 2)
    short = reverb(x, 0.1, SR, np.random.default_rng(0))
    assert np.sum(short[tail] ** 2) < np.sum(y[tail] ** 2)  # a longer RT60 decays more slowly


@pytest.mark.parametrize("color", ["white", "pink", "brown"])
@pytest.mark.parametrize("snr", [0.0, 5.0, 15.0])
def test_noise_is_added_at_the_target_snr(color: str, snr: float):
    x = tone(440, 1.0)
    y = add_noise(x, snr, color, np.random.default_rng(1))
    noise = y.astype(np.float64) - x
    got = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise**2))
    assert abs(got - snr) < 0.5


def test_noise_colours_have_their_slopes():
    rng = np.random.default_rng(0)
    x = np.zeros(SR, np.float32) + 0.1
    for color, more_low in (("white", False), ("pink", True), ("brown", True)):
        n = add_noise(x, 0.0, color, rng) - x
        ratio = band_energy(n, 50, 500) / band_energy(n, 5000, 5450)
        assert (ratio > 5) == more_low, color


def test_mulaw_is_8bit_and_close():
    x = tone(440) * 2.0
    y = mulaw(x)
    assert len(np.unique(y)) <= 256 and np.abs(y).max() <= 1.0 + 1e-6
    inside = np.abs(x) < 0.9
    assert np.max(np.abs(y[inside] - x[inside])) < 0.05


def test_speed_changes_the_length():
    x = tone(440, 1.0)
    assert abs(len(speed(x, 1.1, SR)) - SR / 1.1) <= 2 and abs(len(speed(x, 0.9, SR)) - SR / 0.9) <= 2


def test_channel_and_augmentation_are_deterministic_and_use_different_streams():
    x = tone(300, 0.8) + tone(1200, 0.8, 0.1)
    cfg = ChannelConfig()
    a = apply_channel(x, SR, cfg, channel_rng(0, 5))
    assert np.array_equal(a, apply_channel(x, SR, cfg, channel_rng(0, 5)))
    assert not np.array_equal(a, apply_channel(x, SR, cfg, channel_rng(0, 6)))
    assert not np.array_equal(a, apply_channel(x, SR, cfg, channel_rng(1, 5)))
    assert len(a) == len(x)
    b = augment_wave(x, SR, augment_rng(0, 5, 0))
    assert np.array_equal(b, augment_wave(x, SR, augment_rng(0, 5, 0)))
    assert not np.array_equal(b, augment_wave(x, SR, augment_rng(0, 5, 1)))
    # the test channel's draws are not any training copy's draws
    assert channel_rng(0, 5).random(4).tolist() != augment_rng(0, 5, 0).random(4).tolist()


# -- the store --------------------------------------------------------------------------------
def test_augmented_copies_only_in_train_and_same_seed_same_bytes(digits: Path, tmp_path: Path):
    a = prepare_audio(digits, tmp_path / "a", val_fraction=0.2, test_fraction=0.2, augment_copies=2)
    idx = a.index
    clean = idx["copy_of"] < 0
    n_clean = int(clean.sum())
    assert n_clean == 30 and a.meta["records"] == 30 + 2 * int((idx["split"][clean] == SPLIT_CODE["train"]).sum())
    copies = ~clean
    assert (idx["split"][copies] == SPLIT_CODE["train"]).all()
    assert (idx["split"][idx["copy_of"][copies]] == SPLIT_CODE["train"]).all()  # never a copy of a val/test clip
    assert (idx["label"][copies] == idx["label"][idx["copy_of"][copies]]).all()
    assert (idx["group"][copies] == idx["group"][idx["copy_of"][copies]]).all()
    assert a.meta["audio"]["augmented_copies"]["records"] == int(copies.sum())
    assert len(a.meta["files"]) == n_clean
    # normalization still from the clean train clips only
    feats = a.arrays["features"]
    train = np.concatenate(
        [
            np.asarray(feats[idx["offset"][r] : idx["offset"][r] + idx["length"][r]], np.float64)
            for r in np.flatnonzero(clean & (idx["split"] == SPLIT_CODE["train"]))
        ]
    )
    assert np.allclose(a.meta["audio"]["normalization"]["mean"], train.mean(0), atol=1e-6)
    # the same seed gives the same bytes; another seed other copies
    b = prepare_audio(digits, tmp_path / "b", val_fraction=0.2, test_fraction=0.2, augment_copies=2)
    for name in ("features.bin", "features_channel.bin", "index.npz"):
        assert (a.path / name).read_bytes() == (b.path / name).read_bytes(), name
    c = prepare_audio(digits, tmp_path / "c", val_fraction=0.2, test_fraction=0.2, augment_copies=2, workers=2)
    assert (a.path / "features.bin").read_bytes() == (c.path / "features.bin").read_bytes()


def test_channel_features_for_val_and_test_clips_only(digits: Path, tmp_path: Path):
    store = prepare_audio(digits, tmp_path / "p", val_fraction=0.2, test_fraction=0.2, seed=3)
    idx, meta = store.index, store.meta
    has = idx["channel_offset"] >= 0
    assert not has[idx["split"] == SPLIT_CODE["train"]].any()
    assert has[idx["split"] != SPLIT_CODE["train"]].all()
    assert meta["audio"]["channel_test"]["clips"] == int(has.sum()) == 12
    assert meta["audio"]["augmented_copies"]["records"] == 0 and meta["records"] == 30
    assert meta["settings"]["channel"] == json.loads(json.dumps(ChannelConfig().to_dict()))
    # the channel features of a test clip are exactly its decoded wave through the channel, featurized
    fc = FeatureConfig()
    r = int(store.records("test")[0])
    wave = crop(load_audio(meta["files"][r], SR, fc.max_seconds, fc.n_fft), int(fc.max_seconds * SR))
    want = log_mel(apply_channel(wave, SR, ChannelConfig(), channel_rng(3, r)), fc)
    o, n = int(idx["channel_offset"][r]), int(idx["length"][r])
    got = np.asarray(store.arrays["features_channel"][o : o + n], np.float32)
    assert got.shape == want.shape and np.allclose(got, want, atol=0.02)
    clean = np.asarray(store.arrays["features"][idx["offset"][r] : idx["offset"][r] + n], np.float32)
    assert not np.allclose(got, clean, atol=0.5)


def test_datamodule_channel_dataset_and_train_copies(digits: Path, tmp_path: Path):
    dm = AudioDataModule(
        source=str(digits), prepared_dir=str(tmp_path / "prep"), val_fraction=0.2, test_fraction=0.2, augment_copies=1
    )
    dm.prepare_data()
    dm.setup("fit")
    n_train_clean = len(dm.meta["audio"]["speakers_per_split"]["train"]) * 6
    assert len(dm.datasets["train"]) == 2 * n_train_clean
    ch, test = dm.channel_dataset("test"), dm.datasets["test"]
    assert len(ch) == len(test) == 6
    for i in range(len(ch)):
        assert ch[i][0].shape == test[i][0].shape and ch[i][1] == test[i][1]
    # a config asking for other copies than the store holds is refused
    other = AudioDataModule(
        source=str(digits), prepared_dir=str(tmp_path / "prep"), val_fraction=0.2, test_fraction=0.2, augment_copies=2
    )
    with pytest.raises(SeqpipeError, match="augment_copies"):
        other.setup("fit")


def test_bad_augment_copies_and_a_store_without_channel_features(digits: Path, tmp_path: Path):
    with pytest.raises(SeqpipeError, match="augment_copies"):
        prepare_audio(digits, tmp_path / "x", augment_copies=-1)
    store = prepare_audio(digits, tmp_path / "p", val_fraction=0.2, test_fraction=0.2)
    meta = json.loads((store.path / "meta.json").read_text())
    del meta["arrays"]["features_channel"], meta["settings"]
    (store.path / "meta.json").write_text(json.dumps(meta))
    (store.path / "features_channel.bin").unlink()
    dm = AudioDataModule(source=str(digits), prepared_dir=str(store.path), val_fraction=0.2, test_fraction=0.2)
    dm.setup("test")
    with pytest.raises(SeqpipeError, match="no channel-shifted features"):
        dm.channel_dataset("test")
    # the clean splits still serve every clip: only the shifted test is missing
    reopened = PreparedStore.open(store.path)
    assert "features_channel" not in reopened.meta["arrays"]
    assert len(dm.datasets["test"]) == int((reopened.index["split"] == 2).sum()) > 0


def test_baselines_report_channel_accuracy(digits: Path, tmp_path: Path):
    from seqpipe.domains.audio.task import baselines

    dm = AudioDataModule(source=str(digits), prepared_dir=str(tmp_path / "prep"), val_fraction=0.2, test_fraction=0.2)
    out = baselines(dm, {"evaluate": {"logreg_C": [1.0]}})
    for name, m in out["baselines"].items():
        assert 0 <= m["test_channel_accuracy"] <= 1 and "test_channel_macro_f1" in m, name


def test_summary_adds_a_shifted_row_against_its_own_best_baseline(tmp_path: Path):
    from seqpipe.stages import summary

    doc = {
        "experiment": "audio-x",
        "domain": "audio",
        "primary_metric": "test_accuracy",
        "direction": "higher",
        "model": {"test_accuracy": 0.97, "test_channel_accuracy": 0.6},
        "baselines": {
            "a": {"test_accuracy": 0.9, "test_channel_accuracy": 0.2},
            "b": {"test_accuracy": 0.8, "test_channel_accuracy": 0.3},
        },
        "best_baseline": "a",
        "shifted_metrics": ["test_channel_accuracy"],
    }
    (tmp_path / "audio-x.json").write_text(json.dumps(doc))
    rows = summary(tmp_path, tmp_path / "summary.md", files=[tmp_path / "audio-x.json"]).splitlines()
    assert (
        rows[2].startswith("| audio-x | audio | test_accuracy")
        and "| a | 0.9000 | +0.0700 | - | better (point) |" in rows[2]
    )
    assert rows[3].startswith("| audio-x (shifted) | audio | test_channel_accuracy")
    assert "| 0.6000 | b | 0.3000 | +0.3000 | - | better (point) |" in rows[3]
