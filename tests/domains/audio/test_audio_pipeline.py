"""Audio end to end through the CLI: generate -> preprocess -> baselines -> fit -> evaluate -> predict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seqpipe.cli import main

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_audio_pipeline_end_to_end_fast_profile(in_tmp: Path, capsys):
    from seqpipe.domains.audio.spoken_digits import main as generate

    assert generate(["--out", "data/raw/audio/digits", "--profile", "fast"]) == 0
    wavs = sorted((in_tmp / "data/raw/audio/digits").rglob("*.wav"))
    assert len(wavs) == 120  # fast: 12 voices x 10 digits x 1 rendition
    cfg = ["--config", str(REPO / "pipelines/audio/crnn.yaml"), "--profile", "fast"]
    assert main(["preprocess", *cfg]) == 0
    assert main(["baselines", *cfg]) == 0
    assert main(["fit", *cfg]) == 0
    run = json.loads((in_tmp / "models/audio-crnn/run.json").read_text())
    # fast: 1 epoch; 8 training voices x 10 clips + 2 augmented copies each = 240 records in batches of 32 = 8,
    # cut to the profile's 5-batch limit
    assert run["model_class"] == "seqpipe.models.crnn.CRNN" and run["global_steps"] == 5
    assert main(["evaluate", *cfg]) == 0

    m = json.loads((in_tmp / "reports/audio-crnn/evaluation.json").read_text())
    assert m["primary_metric"] == "test_accuracy" and m["direction"] == "higher"
    assert set(m["baselines"]) == {"majority", "logreg_mean", "logreg_mean_std"}
    assert {"test_accuracy", "test_macro_f1", "test_recall_seven"} <= set(m["model"])
    test_clips = m["clips_per_split"]["test"]
    assert m["model"]["test_clips"] == test_clips == 10 * len(m["test_speakers"])
    margin, best = m["margin"], m["best_baseline"]  # accuracy of model - best baseline, clips resampled
    assert list(m)[-1] == "margin" and margin["vs"] == best and margin["units"] == test_clips
    assert margin["value"] == pytest.approx(m["model"]["test_accuracy"] - m["baselines"][best]["test_accuracy"])
    assert margin["ci95"][0] <= margin["value"] <= margin["ci95"][1]
    preds = (in_tmp / "reports/audio-crnn/predictions.csv").read_text().splitlines()
    assert preds[0] == "file,speaker,actual,predicted,confidence" and len(preds) == 1 + test_clips
    cm = json.loads((in_tmp / "reports/audio-crnn/confusion.json").read_text())
    assert sum(map(sum, cm["matrix"])) == test_clips
    assert (in_tmp / "reports/audio-crnn/confusion.png").stat().st_size > 1000

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{in_tmp / 'mlruns/mlflow.db'}")
    run = json.loads((in_tmp / f"reports/{m['experiment']}/run.json").read_text())
    arts = [a.path for a in client.list_artifacts(run["mlflow_run_id"], "evaluation")]
    assert "evaluation/confusion.png" in arts
    assert client.get_run(run["mlflow_run_id"]).data.metrics["test/accuracy"] == pytest.approx(
        m["model"]["test_accuracy"]
    )

    capsys.readouterr()
    clip = str(wavs[0])
    assert main(["predict", "--ckpt", "models/audio-crnn/best.ckpt", clip, str(wavs[-1])]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["file"] for r in lines] == [clip, str(wavs[-1])]
    assert all(r["label"] in cm["classes"] and abs(sum(r["probabilities"].values()) - 1) < 1e-3 for r in lines)
    (in_tmp / "broken.wav").write_bytes(b"")
    assert main(["predict", "--ckpt", "models/audio-crnn/best.ckpt", "broken.wav"]) == 2
    assert "broken.wav: zero-length file" in capsys.readouterr().err
