"""Spoken digit strings: real espeak-ng synthesis -> manifest -> store; bad input named; speaker splits; predict."""

import csv

import numpy as np
import pytest
import soundfile as sf
import torch

from seqpipe.domains.audio.speech import english_voices
from seqpipe.domains.digits.datamodule import DigitStringsDataModule, decode_ids, encode_digits
from seqpipe.domains.digits.segments import FixedSegments, segment_vectors
from seqpipe.domains.digits.source import generate_digit_strings, spoken
from seqpipe.domains.digits.task import predict, string_metrics
from seqpipe.errors import SeqpipeError
from seqpipe.models.seq2seq import EOS, PAD, Seq2Seq

VOICES = list(english_voices())[:6]


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "raw"
    generate_digit_strings(out, voices=VOICES, per_voice=3, max_digits=4, seed=0)
    return out


def module(raw, prepared, **kw):
    return DigitStringsDataModule(
        source=str(raw),
        prepared_dir=str(prepared),
        val_fraction=0.2,
        test_fraction=0.2,
        max_digits=4,
        batch_size=4,
        **kw,
    )


def test_generator_writes_what_the_manifest_says(raw):
    rows = list(csv.DictReader(open(raw / "manifest.csv")))
    assert len(rows) == 18 and {r["speaker"] for r in rows} == {v.split("+")[1] for v in VOICES}
    for r in rows:
        assert r["text"].isdigit() and 1 <= len(r["text"]) <= 4
        wave, sr = sf.read(raw / r["path"])
        assert sr == 16000 and 0.2 < len(wave) / sr < 0.6 * len(r["text"]) + 1.0
    assert spoken("417") == "four one seven"
    with pytest.raises(SeqpipeError, match="other than 0-9"):
        spoken("4a")


def test_store_targets_splits_and_normalization(raw, tmp_path):
    dm = module(raw, tmp_path / "prep")
    dm.prepare_data()
    dm.setup()
    meta = dm.meta["digits"]
    spk = meta["speakers_per_split"]
    assert not (set(spk["train"]) & set(spk["test"])) and not (set(spk["train"]) & set(spk["val"]))
    rows = {r["path"]: r["text"] for r in csv.DictReader(open(raw / "manifest.csv"))}
    files = dm.meta["files"]
    for split in ("train", "val", "test"):
        ds = dm.datasets[split]
        for i in range(len(ds)):
            rel = str(files[ds.rows[i]]).split("raw/")[-1]
            assert ds.text(i) == rows[rel]
            x, y = ds[i]
            assert y[-1] == EOS and decode_ids(y[:-1].tolist()) == rows[rel]
    # normalization fitted on train frames only
    tr = dm.store.records("train")
    feats = np.concatenate(
        [
            np.asarray(dm.store.arrays["features"][o : o + n], np.float64)
            for o, n in zip(dm.store.index["offset"][tr], dm.store.index["length"][tr], strict=True)
        ]
    )
    assert np.allclose(meta["normalization"]["mean"], feats.mean(0), atol=1e-4)
    batch = next(iter(dm.val_dataloader()))
    assert batch["inputs"].shape[2] == 40 and batch["targets"].dtype == torch.long
    assert (batch["targets"][batch["targets"] != PAD] >= EOS).all()
    assert dm.spec.target == "sequence" and dm.spec.num_classes == 13 and encode_digits("09") == [3, 12]


def test_store_built_with_other_settings_is_refused(raw, tmp_path):
    """fit/evaluate (setup) refuse a digits store prepared with other features, naming the key."""
    dm = module(raw, tmp_path / "prep")
    dm.prepare_data()
    dm.setup()  # what preprocess recorded is what this config asks for: no false refusal
    other = module(raw, tmp_path / "prep", n_mels=32)
    with pytest.raises(SeqpipeError, match=r"prepared with n_mels=40, this config asks for 32 \(differing: n_mels\)"):
        other.setup()


def test_bad_manifest_rows_are_named(raw, tmp_path):
    rows = list(csv.DictReader(open(raw / "manifest.csv")))
    bad = tmp_path / "bad"
    bad.mkdir()
    cases = {"4a7": "not a string of digits", "12345": "more than max_digits", "missing.wav": "does not exist"}
    for text_or_file, msg in cases.items():
        with open(bad / "manifest.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "text", "speaker"])
            for r in rows:
                w.writerow([str(raw / r["path"]), r["text"], r["speaker"]])
            if text_or_file.endswith(".wav"):
                w.writerow([text_or_file, "12", "x"])
            else:
                w.writerow([str(raw / rows[0]["path"]), text_or_file, "x"])
        with pytest.raises(SeqpipeError, match=msg) as e:
            module(bad, tmp_path / "p1").prepare_data()
        assert f"manifest.csv:{len(rows) + 2}" in str(e.value)
    (bad / "empty.wav").write_bytes(b"")
    with open(bad / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "text", "speaker"])
        for r in rows:
            w.writerow([str(raw / r["path"]), r["text"], r["speaker"]])
        w.writerow(["empty.wav", "5", "x"])
    with pytest.raises(SeqpipeError, match="zero-length") as e:
        module(bad, tmp_path / "p2").prepare_data()
    assert "empty.wav" in str(e.value)
    with open(bad / "manifest.csv", "a", newline="") as f:
        csv.writer(f).writerow([str(raw / rows[0]["path"]), "4a7", "x"])
    dm = module(bad, tmp_path / "p3", strict=False)
    dm.prepare_data()
    skipped = dm.meta["digits"]["skipped"]
    assert len(skipped) == 2 and {"empty.wav" in s["path"] for s in skipped} == {True, False}
    with pytest.raises(SeqpipeError, match="manifest not found"):
        module(tmp_path / "nowhere", tmp_path / "p4").prepare_data()


def test_fixed_segments_baseline_and_metrics():
    x = np.arange(20, dtype=float)[:, None].repeat(3, 1)
    v = segment_vectors(x, 4)
    assert v.shape == (4, 6) and np.allclose(v[:, 0], [2, 7, 12, 17])
    rng = np.random.default_rng(0)
    texts = ["".join(str(d) for d in rng.integers(0, 3, size=n)) for n in rng.integers(1, 4, size=60)]
    # a synthetic "utterance": 10 frames a digit, each digit a distinct constant frame
    frames = [
        np.concatenate([np.full((10, 3), float(c)) for c in t]) + rng.normal(0, 0.05, (10 * len(t), 3)) for t in texts
    ]
    seg = FixedSegments(max_digits=3).fit(frames, texts)
    assert string_metrics(seg.predict(frames), texts) == {"test_cer": 0.0, "test_seq_acc": 1.0}
    assert string_metrics(["41", "7"], ["417", "7"]) == {"test_cer": 0.25, "test_seq_acc": 0.5}


def test_utterance_margin_recomputes_both_cers_on_each_resample():
    from seqpipe.domains.digits.task import utterance_margin

    refs = ["417", "7", "23", "9999", "1"] * 8
    hyps = ["417", "7", "2", "9999", "1"] * 8  # 1 error in 11 digits
    base_hyps = ["41", "", "23", "999", "1"] * 8  # 3 errors in 11 digits
    base = {
        "baselines": {"fixed_segments": string_metrics(base_hyps, refs)},
        "test_hypotheses": {"fixed_segments": base_hyps},
    }
    m = utterance_margin(None, {}, base, hyps, refs)
    assert m["vs"] == "fixed_segments" and m["units"] == 40 and m["block"] == 1
    assert m["value"] == pytest.approx(1 / 11 - 3 / 11)
    assert m["ci95"][0] <= m["value"] <= m["ci95"][1] < 0  # the model is better on every resample


def test_predict_reads_wav_and_refuses_long_audio(raw, tmp_path):
    dm = module(raw, tmp_path / "prep")
    dm.prepare_data()
    dm.setup()
    torch.manual_seed(0)
    model = Seq2Seq(
        dm.spec.to_dict(),
        encoder="conv",
        conv_channels=(4, 8),
        hidden_size=16,
        beam_width=2,
        max_decode_len=5,
        data_info=dm.data_info(),
    ).eval()
    wav = next(raw.glob("*/*.wav"))
    out = predict(model, [str(wav)])
    assert out[0]["file"] == str(wav) and set(out[0]["digits"]) <= set("0123456789") and len(out[0]["digits"]) <= 5
    long = tmp_path / "long.wav"
    sf.write(long, np.random.default_rng(0).normal(0, 0.1, 16000 * 7), 16000)
    with pytest.raises(SeqpipeError, match="at most 6.0 s") as e:
        predict(model, [str(long)])
    assert "long.wav" in str(e.value)
