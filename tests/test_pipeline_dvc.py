"""`dvc repro` of the real dvc.yaml with profile=fast, in a scratch copy of the repository.

This is CI's end-to-end run of every domain: stages, params, metrics schema, summary table.
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
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def sh(cmd, cwd, timeout=1800):
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, shell=True)
    assert out.returncode == 0, f"{cmd} failed:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out.stdout


def test_dvc_repro_fast_profile(tmp_path):
    work = tmp_path / "repo"
    work.mkdir()
    for item in ("dvc.yaml", "params.yaml", "pipelines", "src", "pyproject.toml"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / item)
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["profile"] = "fast"
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    sh("git init -q && git add -A && git -c user.email=ci@x -c user.name=ci commit -qm init && dvc init -q", work)
    sh("dvc repro", work)

    stages = yaml.safe_load((work / "dvc.yaml").read_text())["stages"]
    metric_files = sorted((work / "metrics").glob("*.json"))
    assert metric_files, "no metrics written"
    for f in metric_files:
        d = json.loads(f.read_text())
        for key in ("domain", "task", "primary_metric", "direction", "model", "baselines", "data_fingerprint",
                    "truncated_by_time"):
            assert key in d, f"{f.name} lacks {key}"
        assert d["direction"] in ("lower", "higher") and d["primary_metric"] in d["model"]
        assert d["baselines"], f"{f.name} reports no baseline"
    summary = (work / "metrics/summary.md").read_text()
    assert all(json.loads(f.read_text())["experiment"] in summary for f in metric_files)
    assert {"text_train_lstm", "text_evaluate_lstm", "summary"} <= set(stages)
    # nothing changed -> nothing reruns
    assert "didn't change" in sh("dvc repro", work) or "up to date" in sh("dvc status", work)
    shown = sh("dvc metrics show --json", work)
    assert "text-lstm" in shown
