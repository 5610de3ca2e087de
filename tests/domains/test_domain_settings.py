"""Audio, digit-string and DNA preprocessing settings are declared once, in a frozen dataclass per domain.

The datamodule's arguments, the store builder, meta.json["settings"] (the fit/evaluate check) and the
fingerprint all come from that dataclass; the fingerprint keeps the layout earlier versions hashed.
"""

from __future__ import annotations

import inspect
from dataclasses import FrozenInstanceError, fields, replace
from pathlib import Path
from typing import Any

import pytest

from seqpipe.domains.audio import datamodule as audio_dm
from seqpipe.domains.audio.channel import ChannelConfig
from seqpipe.domains.audio.features import FeatureConfig
from seqpipe.domains.audio.settings import AudioSettings
from seqpipe.domains.digits import datamodule as digits_dm
from seqpipe.domains.digits.settings import DigitsSettings
from seqpipe.domains.dna import datamodule as dna_dm
from seqpipe.domains.dna.settings import DnaSettings


def _other(value: Any) -> Any:
    """A value of the same kind that differs from ``value``."""
    if isinstance(value, bool):
        return not value
    if value is None:
        return 3
    if isinstance(value, (int, float)):
        return value + 1 if isinstance(value, int) else value / 2
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, FeatureConfig):
        return replace(value, n_mels=value.n_mels + 1)
    if isinstance(value, ChannelConfig):
        return replace(value, phone_rate=value.phone_rate * 2)
    raise AssertionError(f"no other value for {value!r}")


def _each_field_changed(settings):
    for f in fields(settings):
        yield f.name, replace(settings, **{f.name: _other(getattr(settings, f.name))})


def _parameters(cls) -> dict[str, Any]:
    return {n: p.default for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self"}


def _captured_build(monkeypatch, module, name: str, dm) -> tuple:
    calls = []
    monkeypatch.setattr(module, name, lambda *args, **kw: calls.append((args, kw)))
    dm.build_store()
    return calls[0]


def test_audio_settings_are_the_one_source(monkeypatch, tmp_path: Path):
    s = AudioSettings()
    params = _parameters(audio_dm.AudioDataModule)
    flat = {**s.features.to_dict(), **{f.name: getattr(s, f.name) for f in fields(s) if f.name != "features"}}
    # every setting the datamodule can choose is one of its arguments, with the dataclass's default
    assert {k: params[k] for k in flat if k != "channel"} == {k: v for k, v in flat.items() if k != "channel"}
    dm = audio_dm.AudioDataModule(
        source="clips", prepared_dir=str(tmp_path / "p"), n_mels=20, seed=3, augment_copies=2, preprocess_workers=2
    )
    assert dm.settings == AudioSettings(features=FeatureConfig(n_mels=20), seed=3, augment_copies=2)
    assert dm.preprocessing_settings() == dm.settings.recorded("clips")
    args, kw = _captured_build(monkeypatch, audio_dm, "prepare_audio", dm)
    assert args[2] is dm.settings and kw == {"workers": 2}
    # recorded: the source and the log-mel settings flat; fingerprinted: the layout earlier versions hashed
    assert s.recorded("clips") == {
        "source": "clips",
        **FeatureConfig().to_dict(),
        **dict(val_fraction=0.15, test_fraction=0.15, seed=0, strict=True, augment_copies=0),
        "channel": ChannelConfig().to_dict(),
    }
    assert s.fingerprint_extra(labels=["a"], speakers=["s"]) == dict(
        features=FeatureConfig().to_dict(),
        val=0.15,
        test=0.15,
        seed=0,
        strict=True,
        labels=["a"],
        speakers=["s"],
        augment_copies=0,
        channel=ChannelConfig().to_dict(),
    )
    for name, changed in _each_field_changed(s):  # a new field reaches both without further code
        assert changed.recorded("clips") != s.recorded("clips"), name
        assert changed.fingerprint_extra() != s.fingerprint_extra(), name
    with pytest.raises(FrozenInstanceError):
        s.seed = 1


def test_digits_settings_are_the_one_source(monkeypatch, tmp_path: Path):
    s = DigitsSettings()
    params = _parameters(digits_dm.DigitStringsDataModule)
    flat = {**s.features.to_dict(), **{f.name: getattr(s, f.name) for f in fields(s) if f.name != "features"}}
    assert {k: params[k] for k in flat} == flat
    dm = digits_dm.DigitStringsDataModule(source="m.csv", prepared_dir=str(tmp_path / "p"), max_digits=4, strict=False)
    assert dm.settings == DigitsSettings(max_digits=4, strict=False)
    assert dm.preprocessing_settings() == dm.settings.recorded("m.csv")
    args, kw = _captured_build(monkeypatch, digits_dm, "prepare_digits", dm)
    assert args[2] is dm.settings and kw == {}
    assert s.fingerprint_extra(texts=["12"], speakers=["s"]) == dict(
        features=FeatureConfig(max_seconds=6.0).to_dict(),
        val=0.15,
        test=0.15,
        seed=0,
        max_digits=7,
        strict=True,
        texts=["12"],
        speakers=["s"],
    )
    assert s.recorded("m.csv") == {
        "source": "m.csv",
        **FeatureConfig(max_seconds=6.0).to_dict(),
        **dict(max_digits=7, val_fraction=0.15, test_fraction=0.15, seed=0, strict=True),
    }
    for name, changed in _each_field_changed(s):
        assert changed.recorded("m.csv") != s.recorded("m.csv"), name
        assert changed.fingerprint_extra() != s.fingerprint_extra(), name


def test_dna_settings_are_the_one_source(monkeypatch, tmp_path: Path):
    s = DnaSettings()
    params = _parameters(dna_dm.DNADataModule)
    defaults = {f.name: getattr(s, f.name) for f in fields(s)}
    # the datamodule defaults to the generated set's labels file; every other default is the dataclass's
    assert {k: params[k] for k in defaults if k != "labels"} == {k: v for k, v in defaults.items() if k != "labels"}
    dm = dna_dm.DNADataModule(source=str(tmp_path / "s.fa"), labels=None, prepared_dir=str(tmp_path / "p"), max_len=50)
    assert dm.settings == DnaSettings(max_len=50)
    assert dm.preprocessing_settings() == dm.settings.recorded(str(tmp_path / "s.fa"))
    args, kw = _captured_build(monkeypatch, dna_dm, "prepare_dna", dm)
    assert args[2] is dm.settings and kw == {}
    assert replace(s, labels=Path("l.csv")).recorded("s.fa") == {"source": "s.fa", **defaults, "labels": "l.csv"}
    assert s.fingerprint_extra() == dict(
        rules={"strict": True, "convert_u": False, "max_len": None, "min_len": 1},
        label_field="label",
        val=0.1,
        test=0.1,
        seed=0,
        cols=["sequence", "label", "id"],
    )
    for name, changed in _each_field_changed(s):
        assert changed.recorded("s.fa") != s.recorded("s.fa"), name
        if name != "labels":  # the labels file is hashed as one of the source files
            assert changed.fingerprint_extra() != s.fingerprint_extra(), name
