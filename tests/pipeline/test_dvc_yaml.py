"""dvc.yaml is generated from pipelines/ (`seqpipe dvc-yaml`): the committed file is the generator's
output, and the generated dependencies are what the stages read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from seqpipe import dvcgen

REPO = Path(__file__).resolve().parents[2]


def test_committed_dvc_yaml_is_the_generators_output(monkeypatch):
    monkeypatch.chdir(REPO)
    assert (REPO / "dvc.yaml").read_text() == dvcgen.render(dvcgen.build()), "run `seqpipe dvc-yaml` and commit"
    assert dvcgen.main(check=True) == 0


def test_stages_depend_on_the_code_they_import_and_the_config_sections_they_read(monkeypatch):
    monkeypatch.chdir(REPO)
    stages = dvcgen.build()["stages"]
    train = stages["text_train_lstm"]
    for shared in (
        "data/module.py",
        "data/spec.py",
        "data/windows.py",
        "data/store.py",
        "data/sampling.py",
        "config.py",
        "tracking.py",
        "stages.py",
        "callbacks.py",
        "domains/text/datamodule.py",
        "domains/text/__init__.py",
        "models/recurrent.py",
    ):
        assert f"src/seqpipe/{shared}" in train["deps"], shared
    assert not any("domains/audio" in d for d in train["deps"])  # another domain's code is not a dependency
    assert {"pipelines/text/lstm.yaml": ["name", "model", "trainer", "fit", "profiles"]} in train["params"]
    assert {"pipelines/text/base.yaml": ["name", "domain", "seed", "data", "trainer", "fit", "profiles"]} in train[
        "params"
    ]
    baselines = stages["dna_baselines"]  # the case: an evaluate key reruns the baselines
    assert any("evaluate" in keys for p in baselines["params"] for keys in p.values())
    assert "src/seqpipe/domains/dna/task.py" in baselines["deps"]
    assert stages["audio_prepare"]["deps"][0] == "data/raw/audio/digits"
    assert "models/stocks-lstm-volatility" in stages["forecast_evaluate_seq2seq"]["deps"]


def test_every_value_lives_in_one_place():
    """params.yaml holds the profile alone; commands pass no --set (values come from the YAMLs)."""
    assert set(yaml.safe_load((REPO / "params.yaml").read_text())) == {"profile"}
    doc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    assert not any("--set" in st["cmd"] for st in doc["stages"].values())


def test_import_closure_follows_lazy_imports_but_not_cli_branches():
    files = dvcgen.import_closure(["seqpipe.cli"])
    assert files == ["src/seqpipe/__init__.py", "src/seqpipe/cli.py", "src/seqpipe/errors.py"]
    assert "src/seqpipe/domains/text/generate.py" in dvcgen.import_closure(["seqpipe.domains.text.task"])  # lazy


def test_summary_reads_exactly_its_declared_metrics_files(monkeypatch, tmp_path):
    """A stray metrics file (a trial, a user's own run) must not change the DVC summary stage's output unseen."""
    monkeypatch.chdir(REPO)
    stage = dvcgen.build()["stages"]["summary"]
    listed = stage["cmd"].split()[2:]
    assert listed and listed == sorted(d for d in stage["deps"] if d.endswith("/evaluation.json"))

    from seqpipe import stages

    doc = {
        "experiment": "x",
        "domain": "text",
        "primary_metric": "test_bpc",
        "direction": "lower",
        "model": {"test_bpc": 1.5},
        "baselines": {"kn8": {"test_bpc": 2.0}},
        "best_baseline": "kn8",
    }
    for name in ("x", "stray"):
        (tmp_path / "reports" / name).mkdir(parents=True)
        (tmp_path / "reports" / name / "evaluation.json").write_text(json.dumps({**doc, "experiment": name}))
    only = stages.summary(tmp_path, out=tmp_path / "s.md", files=[tmp_path / "reports/x/evaluation.json"])
    assert "| x |" in only and "stray" not in only
    monkeypatch.chdir(tmp_path)  # by hand: every evaluation under reports/
    assert "| stray |" in stages.summary(tmp_path, out=tmp_path / "s.md")


def test_compare_prints_one_narrow_row_an_experiment(tmp_path):
    """`seqpipe compare` reads the headlines of metrics/: one row an experiment, under 160 columns."""
    from seqpipe import compare, tracking

    doc = {
        "experiment": "text-lstm",
        "domain": "text",
        "primary_metric": "test_bpc",
        "direction": "lower",
        "model": {"test_bpc": 1.9},
        "baselines": {"kn8": {"test_bpc": 2.1}},
        "best_baseline": "kn8",
        "margin": {"vs": "kn8", "ci95": [-0.25, -0.15]},
    }
    head = tracking.headline(doc)
    assert head["margin"] == pytest.approx(0.2) and head["verdict"] == "better"
    assert (head["ci_low"], head["ci_high"]) == (0.15, 0.25)  # oriented: > 0 the model is better
    (tmp_path / "text-lstm.json").write_text(json.dumps(head))
    (tmp_path / "summary.json").write_text("{}")  # not a headline: skipped
    out = compare.table(compare.from_metrics(tmp_path)).splitlines()
    assert len(out) == 2 and out[1].split()[:3] == ["text-lstm", "test_bpc", "1.9000"] and "better" in out[1]
    assert max(map(len, out)) < 160
