"""`dvc repro` of the real dvc.yaml with profile=fast, in a scratch copy of the repository.

This is CI's end-to-end run of every domain: stages, params, metrics schema, summary table. Then
DVC's staleness, from `dvc status`: editing one key of a config section makes exactly the stages
that read that section stale, and no stage of another dataset.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def sh(cmd, cwd, timeout=1800):
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, shell=True)
    assert out.returncode == 0, f"{cmd} failed:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out.stdout


def test_dvc_repro_fast_profile(tmp_path):
    work = tmp_path / "repo"
    work.mkdir()
    for item in ("dvc.yaml", "params.yaml", "pipelines", "src", "pyproject.toml", "data/raw/splice"):
        src = REPO / item
        (work / item).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / item)
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["profile"] = "fast"
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    sh("git init -q && git add -A && git -c user.email=ci@x -c user.name=ci commit -qm init && dvc init -q", work)
    sh("seqpipe repro --jobs 2", work)  # what `make repro` runs: independent stages side by side

    stages = yaml.safe_load((work / "dvc.yaml").read_text())["stages"]
    metric_files = sorted((work / "metrics").glob("*.json"))
    assert metric_files, "no metrics written"
    for f in metric_files:  # the headline: the same few keys for every experiment (a narrow `dvc metrics show`)
        head = json.loads(f.read_text())
        assert set(head) == {"metric", "model", "baseline", "best", "margin", "ci_low", "ci_high", "verdict"}, f.name
        d = json.loads((work / "reports" / f.stem / "evaluation.json").read_text())
        assert d["model"][d["primary_metric"]] == head["model"] and d["primary_metric"] == head["metric"]
        for key in (
            "domain",
            "task",
            "primary_metric",
            "direction",
            "model",
            "baselines",
            "data_fingerprint",
            "truncated_by_time",
        ):
            assert key in d, f"{f.name} lacks {key}"
        assert d["direction"] in ("lower", "higher") and d["primary_metric"] in d["model"]
        assert d["baselines"], f"{f.name} reports no baseline"
    summary = (work / "metrics/summary.md").read_text()
    assert all(f.stem in summary for f in metric_files)
    assert {"text_train_lstm", "text_evaluate_lstm", "summary"} <= set(stages)
    # nothing changed -> nothing reruns
    assert "didn't change" in sh("dvc repro", work) or "up to date" in sh("dvc status", work)
    shown = sh("dvc metrics show --json", work)
    assert "text-lstm" in shown
    table = sh("COLUMNS=160 dvc metrics show", work)  # the README's promise: it fits a 160-column terminal
    assert max(len(line) for line in table.splitlines()) <= 160, table

    text_all = {f"text_{kind}_{e}" for kind in ("train", "evaluate") for e in ("rnn", "lstm", "gru")}
    kjv_all = {"kjv_prepare", "kjv_baselines", "kjv_train_lstm", "kjv_evaluate_lstm"}
    edits = [  # (file, dotted key, new value, the stages that must be stale -- and no others)
        # the Bible's LSTM is this recipe on its corpus (pipelines/kjv/lstm.yaml: base [../text/lstm.yaml, base.yaml])
        ("pipelines/text/lstm.yaml", "model.init_args.hidden_size", 48, {"text_train_lstm", "kjv_train_lstm"}),
        ("pipelines/text/lstm.yaml", "trainer.max_steps", 123, {"text_train_lstm", "kjv_train_lstm"}),
        ("pipelines/text/lstm.yaml", "fit.ema_decay", 0.999, {"text_train_lstm", "kjv_train_lstm"}),
        (
            "pipelines/dna/base.yaml",
            "evaluate.kmer_C",
            [0.1],
            {"dna_baselines", "dna_evaluate_crnn", "dna_evaluate_lstm"},
        ),
        (
            "pipelines/audio/base.yaml",
            "data.init_args.n_mels",
            32,
            {
                "audio_prepare",
                "audio_baselines",
                "audio_train_crnn",
                "audio_train_gru",
                "audio_evaluate_crnn",
                "audio_evaluate_gru",
            },
        ),
        (  # the Bible pipeline inherits the text settings: its stages go stale too, no other domain's
            "pipelines/text/base.yaml",
            "data.init_args.seq_len",
            48,
            {"text_prepare", "text_baselines", *text_all, *kjv_all},
        ),
        ("pipelines/kjv/base.yaml", "data.init_args.lowercase", False, kjv_all),  # the Bible's LSTM reads it too
    ]
    for rel, key, value, expected in edits:
        path = work / rel
        original = path.read_text()
        doc = yaml.safe_load(original)
        node = doc
        for part in key.split(".")[:-1]:
            node = node[part]
        node[key.split(".")[-1]] = value
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        stale = set(json.loads(sh("dvc status --json", work)))
        path.write_text(original)
        assert stale == expected, f"{rel}:{key}: stale {sorted(stale)}, expected {sorted(expected)}"
    assert json.loads(sh("dvc status --json", work)) == {}

    # a sweep point in a temporary copy: DVC writes the float as 5e-05, the config reads it as a float, and
    # the run lands in this project's MLflow store (DVC_ROOT), not in the copy under .dvc/tmp/exps
    sh("git add -A && git -c user.email=ci@x -c user.name=ci commit -qm repro", work)
    sh("dvc exp run --temp -S 'pipelines/stocks/base.yaml:model.init_args.lr=0.00005' stocks_train_lstm-returns", work)
    import sqlite3

    with sqlite3.connect(work / "mlruns/mlflow.db") as db:
        tagged = db.execute("select count(*) from tags where key = 'dvc_experiment'").fetchone()[0]
    assert tagged >= 1, "the --temp experiment's run is not in the project's tracking store"
