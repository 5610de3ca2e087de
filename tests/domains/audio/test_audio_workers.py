"""Audio preprocessing in worker processes: the same store, byte for byte, as one process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from seqpipe.domains.audio.datamodule import AudioDataModule
from seqpipe.domains.audio.prepare import prepare_audio
from seqpipe.domains.audio.spoken_digits import generate_spoken_digits
from seqpipe.errors import SeqpipeError


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 voices x 3 words x 3 renditions, plus one silent clip (skipped when lenient) and a stereo 22 kHz one."""
    out = tmp_path_factory.mktemp("audio_workers") / "digits"
    generate_spoken_digits(
        out, voices=["en+f3", "en+m1", "en+klatt", "en+Andy"], words=("one", "two", "three"), renditions=3, seed=0
    )
    sf.write(out / "two" / "zz_nohash_0.wav", np.zeros(8000, np.float32), 16000, subtype="PCM_16")
    t = np.arange(22050) / 22050
    sf.write(out / "one" / "yy_nohash_0.wav", np.stack([np.sin(2e3 * t), np.sin(3e3 * t)], 1) * 0.3, 22050)
    return out


def store_bytes(path: Path) -> dict:
    meta = json.loads((path / "meta.json").read_text())
    assert "seconds" not in meta["audio"]  # no wall time in a store: the same input gives the same bytes
    meta.pop("name")
    with np.load(path / "index.npz") as z:
        index = {k: z[k].tobytes() for k in z.files}
    return {"features": (path / "features.bin").read_bytes(), "index": index, "meta": meta}


def test_workers_give_a_bitwise_identical_store(clips: Path, tmp_path: Path):
    one = prepare_audio(clips, tmp_path / "w1", val_fraction=0.25, test_fraction=0.25, strict=False)
    two = prepare_audio(clips, tmp_path / "w2", val_fraction=0.25, test_fraction=0.25, strict=False, workers=2)
    three = prepare_audio(clips, tmp_path / "w3", val_fraction=0.25, test_fraction=0.25, strict=False, workers=3)
    a, b, c = (store_bytes(tmp_path / n) for n in ("w1", "w2", "w3"))
    assert a["features"] == b["features"] == c["features"]
    assert a["index"] == b["index"] == c["index"]
    assert a["meta"] == b["meta"] == c["meta"]  # same files in the same order, same skips, same statistics
    assert one.meta["records"] == two.meta["records"] == three.meta["records"] == 37
    assert [s["path"] for s in two.meta["audio"]["skipped"]] == [str(clips / "two" / "zz_nohash_0.wav")]


def test_workers_raise_the_same_first_error(clips: Path, tmp_path: Path):
    errors = []
    for workers in (1, 2):
        with pytest.raises(SeqpipeError, match="all-silent clip") as e:
            prepare_audio(clips, tmp_path / f"p{workers}", val_fraction=0.25, test_fraction=0.25, workers=workers)
        errors.append(str(e.value))
        assert not (tmp_path / f"p{workers}").exists()
    assert errors[0] == errors[1]


def test_datamodule_passes_preprocess_workers(clips: Path, tmp_path: Path):
    dm = AudioDataModule(
        source=str(clips),
        prepared_dir=str(tmp_path / "dm"),
        strict=False,
        val_fraction=0.25,
        test_fraction=0.25,
        preprocess_workers=2,
        batch_size=4,
    )
    dm.prepare_data()
    dm.setup()
    assert dm.hparams.preprocess_workers == 2 and dm.store.meta["records"] == 37
