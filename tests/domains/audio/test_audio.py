"""Audio domain: speech generator, reader (folder + manifest), features, bad input, split, models on padded batches."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from seqpipe.data.spec import DataSpec
from seqpipe.data.store import SPLIT_CODE
from seqpipe.domains.audio.datamodule import AudioDataModule, SpecAugment, collate_clips
from seqpipe.domains.audio.features import FeatureConfig, clip_features, log_mel
from seqpipe.domains.audio.prepare import prepare_audio
from seqpipe.domains.audio.source import load_audio
from seqpipe.domains.audio.speech import SAMPLE_RATE, english_voices, synthesize
from seqpipe.domains.audio.spoken_digits import generate_spoken_digits
from seqpipe.errors import SeqpipeError

VOICES = ["en+f3", "en+m1", "en+klatt", "en+Andy", "en+whisper"]
WORDS = ("one", "two", "three")


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated dataset in the Speech Commands layout: 5 voices x 3 words x 2 renditions."""
    out = tmp_path_factory.mktemp("audio") / "digits"
    summary = generate_spoken_digits(out, voices=VOICES, words=WORDS, renditions=2, seed=0)
    assert summary["clips"] == 30 and summary["speakers"] == 5
    return out


def copy_dataset(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def tone(seconds: float = 0.5, sr: int = 16000, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# -- the speech generator ---------------------------------------------------------------------
def test_synthesize_is_deterministic_whatever_was_said_before():
    a = synthesize("seven", "en+Andrea", speed=160, pitch=40, snr_db=20, seed=3)
    synthesize("nine", "en+m3", seed=1)  # the engine carries state between utterances; we must not
    b = synthesize("seven", "en+Andrea", speed=160, pitch=40, snr_db=20, seed=3)
    assert a.dtype == np.float32 and np.array_equal(a, b)
    assert 0.2 < len(a) / SAMPLE_RATE < 1.5 and np.abs(a).max() <= 1.0
    c = synthesize("seven", "en+Andrea", speed=160, pitch=40, snr_db=20, seed=4)
    assert not np.array_equal(a, c)  # the seed drives the noise


def test_accented_voices_are_distinct_speakers_with_distinct_sounds():
    from seqpipe.domains.audio.speech import ENGLISH_ACCENTS
    from seqpipe.domains.audio.spoken_digits import speaker_name

    plain, accented = english_voices(), english_voices(accents=True)
    assert [v.split("+")[1] for v in plain] == [v.split("+")[1] for v in accented]  # the same variants, same order
    assert {v.split("+")[0] for v in accented} == set(ENGLISH_ACCENTS)
    assert len({speaker_name(v) for v in accented}) == len(accented)  # still one speaker a voice
    words = "zero one two three"
    waves = {lang: synthesize(words, f"{lang}+f3", seed=0) for lang in ENGLISH_ACCENTS}
    assert len({w.tobytes() for w in waves.values()}) == len(ENGLISH_ACCENTS)  # every accent sounds different
    flat, lively = (synthesize(words, "en+f3", pitch_range=r, seed=0) for r in (10, 90))
    assert not np.array_equal(flat, lively)  # intonation (pitch range) changes the audio


def test_synthesize_params_change_the_audio_and_bad_params_are_refused():
    slow = synthesize("four one seven", "en+f3", speed=100)
    fast = synthesize("four one seven", "en+f3", speed=300)
    assert len(slow) > 1.8 * len(fast)
    assert len(english_voices()) > 100 and "en+f3" in english_voices()
    with pytest.raises(SeqpipeError, match="unknown espeak-ng voice 'en\\+nosuchvoice'"):
        synthesize("one", "en+nosuchvoice")
    with pytest.raises(SeqpipeError, match="speed 20"):
        synthesize("one", speed=20)
    with pytest.raises(SeqpipeError, match="empty text"):
        synthesize("  ")


def test_a_dead_speech_helper_is_an_error_and_is_replaced():
    from seqpipe.domains.audio import speech

    synthesize("one")
    pool = speech._engine()
    for z in list(pool.free):
        z.proc.kill()
        z.proc.wait()
    with pytest.raises(SeqpipeError, match="speech helper process died"):
        synthesize("two")
    assert len(synthesize("two")) > 1000  # a fresh helper took over


def test_generated_dataset_is_identical_whatever_the_parallelism(digits: Path, tmp_path: Path):
    one = generate_spoken_digits(tmp_path / "w1", voices=VOICES[:3], words=WORDS[:2], renditions=1, seed=0, workers=1)
    two = generate_spoken_digits(tmp_path / "w2", voices=VOICES[:3], words=WORDS[:2], renditions=1, seed=0, workers=2)
    assert one["clips"] == two["clips"] == 6
    for f in sorted((tmp_path / "w1").rglob("*.wav")):
        rel = f.relative_to(tmp_path / "w1")
        assert f.read_bytes() == (tmp_path / "w2" / rel).read_bytes() == (digits / rel).read_bytes()
    assert (tmp_path / "w1" / "manifest.csv").read_text() == (tmp_path / "w2" / "manifest.csv").read_text()


# -- reading a folder of WAVs built from generated audio ---------------------------------------
def test_folder_of_generated_wavs_reads_back(digits: Path, tmp_path: Path):
    files = sorted(digits.glob("*/*.wav"))
    assert len(files) == 30 and (digits / "two" / "f3_nohash_1.wav").exists()
    info = sf.info(files[0])
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    store = prepare_audio(digits, tmp_path / "prep", val_fraction=0.2, test_fraction=0.2)
    meta, idx = store.meta, store.index
    assert meta["records"] == 30 and meta["audio"]["classes"] == ["one", "three", "two"]
    assert (
        meta["spec"]["input"] == "features" and meta["spec"]["feature_dim"] == 40 and meta["spec"]["num_classes"] == 3
    )
    assert store.arrays["features"].dtype == np.float16
    # every record's frames are exactly the log-mel of its file, as predict computes them
    fc = FeatureConfig()
    for r in (0, 17, 29):
        path = meta["files"][r]
        want = clip_features(path, fc)
        got = np.asarray(store.arrays["features"][idx["offset"][r] : idx["offset"][r] + idx["length"][r]], np.float32)
        assert got.shape == want.shape == (1 + len(load_audio(path, 16000)) // 160, 40)
        assert np.allclose(got, want, atol=0.02)
        assert meta["audio"]["classes"][idx["label"][r]] == Path(path).parent.name


def test_split_is_disjoint_by_speaker_and_statistics_come_from_train_only(digits: Path, tmp_path: Path):
    store = prepare_audio(digits, tmp_path / "prep", val_fraction=0.2, test_fraction=0.2, seed=1)
    idx, meta = store.index, store.meta
    speakers = {
        name: {meta["groups"][g] for g in idx["group"][idx["split"] == code]} for name, code in SPLIT_CODE.items()
    }
    assert [len(speakers[s]) for s in ("train", "val", "test")] == [3, 1, 1]
    assert not (speakers["train"] & speakers["test"]) and not (speakers["train"] & speakers["val"])
    assert not (speakers["val"] & speakers["test"])
    assert sorted(meta["audio"]["speakers_per_split"]["test"]) == sorted(speakers["test"])
    # file names carry the speaker: no test file's speaker ever appears among training files
    train_files = {Path(meta["files"][r]).name.split("_nohash_")[0] for r in store.records("train")}
    test_files = {Path(meta["files"][r]).name.split("_nohash_")[0] for r in store.records("test")}
    assert not train_files & test_files
    # normalization = mean/std over train frames only (not val/test)
    feats = store.arrays["features"]
    train = np.concatenate(
        [
            np.asarray(feats[idx["offset"][r] : idx["offset"][r] + idx["length"][r]], np.float64)
            for r in store.records("train")
        ]
    )
    allf = np.asarray(feats, np.float64)
    norm = meta["audio"]["normalization"]
    assert np.allclose(norm["mean"], train.mean(0), atol=1e-6) and np.allclose(norm["std"], train.std(0), atol=1e-6)
    assert not np.allclose(norm["mean"], allf.mean(0), atol=1e-3)
    assert norm["train_frames"] == len(train)


def test_manifest_with_relative_paths_and_speakers(digits: Path, tmp_path: Path):
    manifest = digits / "manifest.csv"
    rows = list(csv.DictReader(open(manifest)))
    assert len(rows) == 30 and set(rows[0]) == {"path", "label", "speaker"}
    store = prepare_audio(manifest, tmp_path / "prep", val_fraction=0.2, test_fraction=0.2)
    assert store.meta["records"] == 30 and store.meta["audio"]["split_by"] == "speaker"
    # the manifest's labels win over folder names: relabel two rows
    rows2 = [dict(r, label="odd" if r["label"] in ("one", "three") else "even") for r in rows]
    m2 = tmp_path / "m2.csv"
    with open(m2, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "label"])
        w.writeheader()
        w.writerows({"path": str(digits / r["path"]), "label": r["label"]} for r in rows2)
    store2 = prepare_audio(m2, tmp_path / "prep2", val_fraction=0.2, test_fraction=0.2)
    assert store2.meta["audio"]["classes"] == ["even", "odd"]
    assert store2.meta["audio"]["split_by"] == "clip"  # no speaker column: clips are split one by one
    assert store2.meta["audio"]["clips_per_class"] == {"even": 10, "odd": 20}


def test_decoding_stereo_any_rate_flac_ogg(tmp_path: Path):
    x = tone(0.5, 44100)
    stereo = np.stack([x, np.zeros_like(x)], 1)
    sf.write(tmp_path / "s.wav", stereo, 44100, subtype="PCM_16")
    sf.write(tmp_path / "a.flac", tone(0.25, 22050), 22050)
    sf.write(tmp_path / "a.ogg", tone(0.25, 16000), 16000)
    y = load_audio(tmp_path / "s.wav", 16000)
    assert y.dtype == np.float32 and len(y) == 8000 and abs(np.abs(y).max() - 0.15) < 0.01  # mono = channel mean
    assert len(load_audio(tmp_path / "a.flac", 16000)) == 4000
    assert abs(len(load_audio(tmp_path / "a.ogg", 8000)) - 2000) <= 2


def test_log_mel_matches_torchaudio_melspectrogram():
    import torchaudio

    fc = FeatureConfig()
    wave = synthesize("eight", "en+m1", seed=0)
    import soxr

    wave = soxr.resample(wave, SAMPLE_RATE, 16000).astype(np.float32)
    ours = log_mel(wave, fc)
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=16000,
        n_fft=400,
        hop_length=160,
        n_mels=40,
        f_min=20.0,
        norm="slaney",
        mel_scale="slaney",
        pad_mode="constant",
        power=2.0,
    )
    theirs = torch.log(mel(torch.from_numpy(wave)) + 1e-6).T.numpy()
    assert ours.shape == theirs.shape == (1 + len(wave) // 160, 40)
    loud = ours > np.log(1e-3)
    assert np.abs(ours - theirs)[loud].max() < 1e-3


def test_long_clips_are_center_cropped(tmp_path: Path):
    for label in ("a", "b"):
        for spk in ("s1", "s2", "s3", "s4"):
            (tmp_path / "src" / label).mkdir(parents=True, exist_ok=True)
            sf.write(
                tmp_path / "src" / label / f"{spk}_nohash_0.wav", tone(2.0, freq=300 if label == "a" else 900), 16000
            )
    store = prepare_audio(
        tmp_path / "src",
        tmp_path / "prep",
        features=FeatureConfig(max_seconds=1.0),
        val_fraction=0.25,
        test_fraction=0.25,
    )
    assert store.meta["audio"]["cropped_clips"] == 8
    assert set(store.index["length"].tolist()) == {101}  # 1.0 s at a 10 ms hop, centered frames


# -- bad input: strict names the file, lenient skips and records ------------------------------
def bad_dataset(digits: Path, tmp_path: Path, kind: str) -> tuple[Path, str, str]:
    """A copy of the generated set with one defect; returns (source, bad path fragment, message regex)."""
    root = copy_dataset(digits, tmp_path / "src")
    good = root / "one" / "f3_nohash_0.wav"
    if kind == "corrupt":
        bad = root / "one" / "zz_nohash_9.wav"
        bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEthis is not audio at all" * 4)
        return root, str(bad), "no 'data' chunk|cannot decode"
    if kind == "truncated":
        bad = root / "one" / "zz_nohash_9.wav"
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
        return root, str(bad), "truncated: the data chunk declares"
    if kind == "truncated_flac":
        bad = root / "one" / "zz_nohash_9.flac"
        sf.write(tmp_path / "full.flac", tone(1.0), 16000)
        data = (tmp_path / "full.flac").read_bytes()
        bad.write_bytes(data[: len(data) // 2])
        return root, str(bad), "cannot decode audio"
    if kind == "zero_length":
        bad = root / "two" / "zz_nohash_9.wav"
        bad.write_bytes(b"")
        return root, str(bad), "zero-length file"
    if kind == "silent":
        bad = root / "two" / "zz_nohash_9.wav"
        sf.write(bad, np.zeros(8000, np.float32), 16000, subtype="PCM_16")
        return root, str(bad), "all-silent clip"
    if kind == "unsupported":
        bad = root / "three" / "zz_nohash_9.mp3"
        bad.write_bytes(b"ID3\x03\x00" + b"\x00" * 100)
        return root, str(bad), "unsupported format '.mp3'"
    if kind == "empty_folder":
        bad = root / "four"
        bad.mkdir()
        return root, str(bad), "empty label folder"
    if kind == "missing_manifest_file":
        m = root / "manifest.csv"
        with open(m, "a") as f:
            f.write("three/ghost_nohash_0.wav,three,ghost\n")
        return m, "ghost_nohash_0.wav", "file in manifest does not exist"
    raise ValueError(kind)


BAD_KINDS = [
    "corrupt",
    "truncated",
    "truncated_flac",
    "zero_length",
    "silent",
    "unsupported",
    "empty_folder",
    "missing_manifest_file",
]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_input_strict_raises_naming_the_file(digits: Path, tmp_path: Path, kind: str):
    source, bad, message = bad_dataset(digits, tmp_path, kind)
    with pytest.raises(SeqpipeError, match=message) as err:
        prepare_audio(source, tmp_path / "prep", val_fraction=0.2, test_fraction=0.2)
    assert bad in str(err.value) and "strict: false" in str(err.value)
    assert not (tmp_path / "prep").exists()  # nothing half-written


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_input_lenient_skips_and_records(digits: Path, tmp_path: Path, kind: str, caplog):
    source, bad, message = bad_dataset(digits, tmp_path, kind)
    store = prepare_audio(source, tmp_path / "prep", val_fraction=0.2, test_fraction=0.2, strict=False)
    skipped = store.meta["audio"]["skipped"]
    assert len(skipped) == 1 and bad in skipped[0]["path"]
    import re

    assert re.search(message, skipped[0]["reason"])
    assert store.meta["records"] == 30 and store.meta["audio"]["classes"] == ["one", "three", "two"]
    assert any(bad in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)  # and in the log


@pytest.mark.parametrize("strict", [True, False])
def test_single_class_is_refused_in_both_modes(digits: Path, tmp_path: Path, strict: bool):
    root = tmp_path / "src"
    shutil.copytree(digits / "one", root / "one")
    with pytest.raises(SeqpipeError, match=r"found 1 class\(es\) \['one'\]") as err:
        prepare_audio(root, tmp_path / "prep", strict=strict)
    assert str(root) in str(err.value)


def test_predict_names_a_bad_file(tmp_path: Path):
    from seqpipe.domains.audio.task import predict
    from seqpipe.models import CRNN

    spec = DataSpec(input="features", target="class", feature_dim=40, num_classes=2).to_dict()
    info = {
        "domain": "audio",
        "classes": ["a", "b"],
        "features": FeatureConfig().to_dict(),
        "normalization": {"mean": [0.0] * 40, "std": [1.0] * 40},
    }
    model = CRNN(spec=spec, conv_channels=[4], time_pool=[2], freq_pool=[2], hidden_size=8, data_info=info)
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(SeqpipeError, match="empty.wav: zero-length file"):
        predict(model, [str(tmp_path / "empty.wav")])
    sf.write(tmp_path / "ok.wav", tone(0.4, 8000), 8000)
    [out] = predict(model, [str(tmp_path / "ok.wav")])
    assert out["label"] in ("a", "b") and abs(sum(out["probabilities"].values()) - 1) < 1e-3


# -- batches, augmentation and models on padded batches ---------------------------------------
def test_datamodule_batches_pad_and_augment_train_only(digits: Path, tmp_path: Path):
    dm = AudioDataModule(
        source=str(digits),
        prepared_dir=str(tmp_path / "prep"),
        val_fraction=0.2,
        test_fraction=0.2,
        batch_size=8,
        spec_augment={"freq_mask": 10, "time_mask": 10, "n_freq_masks": 2},
    )
    dm.prepare_data()
    dm.setup("fit")
    assert dm.spec.num_classes == 3 and dm.data_info()["classes"] == ["one", "three", "two"]
    assert set(dm.data_info()) == {"domain", "classes", "features", "normalization"}
    torch.manual_seed(0)
    val = next(iter(dm.val_dataloader()))
    x, lengths = val["inputs"], val["lengths"]
    assert x.shape == (6, int(lengths.max()), 40) and x.dtype == torch.float32
    for i, n in enumerate(lengths.tolist()):
        assert torch.all(x[i, n:] == 0)  # padding
        assert torch.count_nonzero(x[i, :n]) == n * 40  # no masks outside training
    train = next(iter(dm.train_dataloader()))
    zero_bands = [(train["inputs"][i, : train["lengths"][i]] == 0).all(0).sum().item() for i in range(8)]
    assert sum(zero_bands) > 0  # frequency masks hit training batches
    aug = SpecAugment(freq_mask=8, time_mask=0)
    ys = [aug((np.ones((50, 40), np.float32), 0), np.random.default_rng([0, 0, i]))[0] for i in range(16)]
    masked = [int((y == 0).all(0).sum()) for y in ys]  # masked bands per sample
    assert ys[0].shape == (50, 40) and len(set(masked)) > 1  # each sample its own mask
    again = aug((np.ones((50, 40), np.float32), 0), np.random.default_rng([0, 0, 3]))[0]
    assert np.array_equal(again, ys[3])  # a function of its rng: (seed, epoch, index)


@pytest.mark.parametrize("model_name", ["crnn", "gru", "lstm"])
def test_models_ignore_padding(model_name: str):
    from seqpipe.models import CRNN, RecurrentModel

    torch.manual_seed(0)
    spec = DataSpec(input="features", target="class", feature_dim=40, num_classes=10).to_dict()
    if model_name == "crnn":
        m = CRNN(spec=spec, conv_channels=[8, 16], hidden_size=16, bidirectional=True, pooling="mean")
    else:
        m = RecurrentModel(
            spec=spec, cell=model_name, hidden_size=16, num_layers=1, bidirectional=True, pooling="attention"
        )
    m.eval()
    for mod in m.modules():  # non-trivial batch norm statistics: BN(0) != 0
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-1, 1)
            mod.bias.data.uniform_(-1, 1)
    clips = [np.random.default_rng(i).standard_normal((n, 40)).astype(np.float32) for i, n in enumerate((37, 60, 13))]
    with torch.no_grad():
        alone = torch.cat([m(torch.from_numpy(c)[None], torch.tensor([len(c)]))[0] for c in clips])
        batch = collate_clips([(c, 0) for c in clips])
        padded = m(batch["inputs"], batch["lengths"])[0]
        garbage = batch["inputs"].clone()
        for i, n in enumerate(batch["lengths"].tolist()):
            garbage[i, n:] = 100.0  # whatever sits in the padding must not matter
        noisy = m(garbage, batch["lengths"])[0]
    assert padded.shape == (3, 10)
    assert torch.allclose(alone, padded, atol=1e-5) and torch.allclose(alone, noisy, atol=1e-5)


def test_evaluation_metrics_and_confusion_numbers():
    from seqpipe.domains.audio.task import classification_metrics, confusion

    y = np.array([0, 0, 0, 1, 1, 2])
    p = np.array([0, 0, 1, 1, 1, 0])
    m = classification_metrics(y, p, ["a", "b", "c"])
    assert m["test_accuracy"] == pytest.approx(4 / 6)
    assert (m["test_recall_a"], m["test_recall_b"], m["test_recall_c"]) == (pytest.approx(2 / 3), 1.0, 0.0)
    # F1: a = 2*(2/3*2/3)/(4/3) = 2/3, b = 2*(2/3*1)/(5/3) = 0.8, c = 0
    assert m["test_macro_f1"] == pytest.approx((2 / 3 + 0.8 + 0) / 3)
    assert confusion(y, p, 3).tolist() == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_baselines_on_generated_digits(digits: Path, tmp_path: Path):
    from seqpipe.domains.audio.task import baselines

    dm = AudioDataModule(source=str(digits), prepared_dir=str(tmp_path / "prep"), val_fraction=0.2, test_fraction=0.2)
    out = baselines(dm, {"evaluate": {"logreg_C": [0.1, 1.0]}})
    b = out["baselines"]
    assert set(b) == {"majority", "logreg_mean", "logreg_mean_std"}
    test_labels = dm.store.index["label"][dm.store.records("test")]
    majority_id = dm.classes.index(out["majority_class"])
    assert b["majority"]["test_accuracy"] == pytest.approx(np.mean(test_labels == majority_id))
    assert all(0 <= v["test_accuracy"] <= 1 for v in b.values())
    assert set(out["chosen_C_on_val"]) == {"logreg_mean", "logreg_mean_std"}
    json.dumps(out)  # JSON-able


def test_clip_margin_pairs_model_and_best_baseline_per_clip():
    from seqpipe.domains.audio.task import clip_margin

    y = np.array([0, 1, 2, 1] * 10)
    pred = y.copy()
    pred[:4] = 0  # the model misses 3 of 40 clips
    base = {
        "baselines": {"majority": {"test_accuracy": 0.5}, "logreg_mean": {"test_accuracy": 0.75}},
        "test_predictions": {"majority": [1] * 40, "logreg_mean": [0, 1, 0, 0] * 10},
    }
    m = clip_margin(None, {}, base, y, pred)
    assert m["vs"] == "logreg_mean" and m["units"] == 40 and m["unit"].startswith("test clip")
    assert m["value"] == pytest.approx(37 / 40 - 0.5)  # logreg_mean's listed predictions are right on half
    assert m["ci95"][0] <= m["value"] <= m["ci95"][1]
