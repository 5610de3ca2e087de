"""A domain from outside seqpipe: examples/ecg_domain (the package ecg_beats and its pipelines) is found by
``domain: ecg_beats``, runs through the real command line with no edit to seqpipe, and `seqpipe dvc-yaml`
makes its stages depend on the example's own files."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from seqpipe import cli, dvcgen, registry
from seqpipe.errors import SeqpipeError

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "ecg_domain"
SEQPIPE = Path(sys.executable).with_name("seqpipe")
CORE_FOR_DOMAINS = {"data", "models", "evaluation", "errors", "progress", "domain"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the example: a user's project folder, seqpipe installed elsewhere."""
    dest = tmp_path / "ecg_domain"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture
def on_path(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project as the working directory, its package importable; the registry and imports forgotten after."""

    def forget() -> None:
        registry.get.cache_clear()
        for name in [m for m in sys.modules if m == "ecg_beats" or m.startswith("ecg_beats.")]:
            del sys.modules[name]

    forget()
    monkeypatch.syspath_prepend(str(project))
    monkeypatch.chdir(project)
    yield project
    forget()


def test_registry_finds_the_example_by_its_package_name(on_path):
    domain = registry.get("ecg_beats")
    assert (domain.name, domain.task) == ("ecg_beats", "ecg_beats.task")
    assert registry.evaluate_keys("ecg_beats")["l2"].startswith("softmax-regression")
    assert registry.store_builder("ecg_beats.BeatDataModule").__name__ == "build_beat_store"
    from ecg_beats import BeatDataModule  # the package exports its datamodule (DOMAIN.export)

    assert BeatDataModule.__module__ == "ecg_beats.datamodule"
    with pytest.raises(SeqpipeError, match="unknown domain 'no_such_domain_pkg'"):
        registry.get("no_such_domain_pkg")
    with pytest.raises(SeqpipeError, match="json defines no DOMAIN"):
        registry.get("json")  # importable, but no domain


def test_an_installed_package_registers_the_domain_through_its_entry_point(on_path):
    """What `pip install` of examples/ecg_domain/pyproject.toml leaves: an entry point in seqpipe.domains."""
    dist = on_path / "ecg_beats-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ecg-beats\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[seqpipe.domains]\necg_beats = ecg_beats\n")
    assert registry.installed()["ecg_beats"] == "ecg_beats"
    assert registry.get("ecg_beats").name == "ecg_beats"


def test_example_imports_only_the_core_library_layers():
    for f in sorted((EXAMPLE / "ecg_beats").glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in (n for n in names if n.split(".")[0] == "seqpipe"):
                assert name.split(".")[1] in CORE_FOR_DOMAINS, f"{f.name} imports {name}"


def test_dvc_yaml_of_the_example_depends_on_its_own_files(on_path):
    assert cli.main(["dvc-yaml"]) == 0
    assert cli.main(["dvc-yaml", "--check"]) == 0
    stages = yaml.safe_load((on_path / "dvc.yaml").read_text())["stages"]
    assert list(stages) == ["ecg_raw", "ecg_prepare", "ecg_baselines", "ecg_train_gru", "ecg_evaluate_gru", "summary"]
    assert stages["ecg_raw"]["deps"] == ["ecg_beats/__init__.py", "ecg_beats/synth.py"]
    assert stages["ecg_prepare"]["deps"] == [
        "data/raw/ecg",
        "ecg_beats/__init__.py",
        "ecg_beats/datamodule.py",
        "ecg_beats/prepare.py",
    ]
    assert "ecg_beats/task.py" in stages["ecg_evaluate_gru"]["deps"]
    assert "ecg_beats/baselines.py" in stages["ecg_baselines"]["deps"]
    outs = {str(next(iter(o))) if isinstance(o, dict) else o for st in stages.values() for o in st.get("outs", [])}
    for st in stages.values():  # every dependency is a file of the project or another stage's output
        for dep in st["deps"]:
            inside_an_out = any(dep == o or dep.startswith(o.rstrip("/") + "/") for o in outs)
            assert (on_path / dep).exists() or inside_an_out or dep.startswith("metrics/"), dep


def test_import_closure_follows_relative_imports_and_skips_installed_packages(tmp_path, monkeypatch):
    pkg = tmp_path / "mypkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "util.py").write_text("import numpy\n")
    (pkg / "sub" / "__init__.py").write_text("from .. import util\n")
    (pkg / "sub" / "task.py").write_text(
        "from . import helper\nfrom ..util import numpy\n\ndef f():\n    import json\n"
    )
    (pkg / "sub" / "helper.py").write_text("import seqpipe.errors\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    dvcgen.clear_cache()
    try:
        closure = dvcgen.import_closure(["mypkg.sub.task"])
    finally:
        dvcgen.clear_cache()
    assert closure == [
        "mypkg/__init__.py",
        "mypkg/sub/__init__.py",
        "mypkg/sub/helper.py",
        "mypkg/sub/task.py",
        "mypkg/util.py",
    ]  # numpy, json and seqpipe (outside this project) are no dependencies


def _seqpipe(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(project)])}
    env.pop("MLFLOW_TRACKING_URI", None)  # the project's own store, under the copy
    cmd = [str(SEQPIPE)] if SEQPIPE.exists() else [sys.executable, "-m", "seqpipe"]
    out = subprocess.run([*cmd, *args], cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"seqpipe {' '.join(args)}:\n{out.stderr[-3000:]}"
    return out


@pytest.mark.slow
def test_the_example_runs_through_the_command_line(project):
    env = {**os.environ, "PYTHONPATH": str(project)}
    subprocess.run([sys.executable, "-m", "ecg_beats.synth", "--out", "data/raw/ecg"], cwd=project, env=env, check=True)
    base, gru = "pipelines/ecg/base.yaml", "pipelines/ecg/gru.yaml"
    _seqpipe(project, "preprocess", "--config", base, "--profile", "fast")
    meta = json.loads((project / "data/prepared/ecg/meta.json").read_text())
    assert (meta["domain"], meta["records"], meta["spec"]["input"]) == ("ecg_beats", 600, "features")
    _seqpipe(project, "baselines", "--config", base, "--profile", "fast")
    _seqpipe(project, "fit", "--config", gru, "--profile", "fast")
    _seqpipe(project, "evaluate", "--config", gru, "--profile", "fast")

    doc = json.loads((project / "reports/ecg-gru/evaluation.json").read_text())
    fitted = json.loads((project / "reports/baselines/ecg_beats.json").read_text())
    assert (doc["domain"], doc["primary_metric"]) == ("ecg_beats", "test_balanced_accuracy")
    assert doc["baselines"] == fitted["baselines"]
    assert set(doc["baselines"]) == {"majority", "centroid", "softmax"}
    assert doc["baselines"]["majority"]["test_balanced_accuracy"] == pytest.approx(1 / 3)
    assert doc["baselines"]["softmax"]["test_balanced_accuracy"] > 0.7  # the features separate the classes
    model = doc["model"]
    assert model["test_beats"] == 120
    assert model["test_balanced_accuracy"] > 0.5  # chance is 1/3
    assert np.sum(doc["confusion"]) == 120 and doc["classes"] == ["normal", "premature", "wide_qrs"]

    lines = _seqpipe(project, "predict", "--ckpt", "models/ecg-gru/best.ckpt", "data/raw/ecg/beats.npz").stdout
    preds = [json.loads(line) for line in lines.splitlines()]
    assert len(preds) == 600
    assert np.mean([p["predicted"] == p["label"] for p in preds]) > 0.5

    _seqpipe(project, "dvc-yaml")
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    assert "ecg_beats/task.py" in stages["ecg_evaluate_gru"]["deps"]
