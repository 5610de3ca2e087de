"""`seqpipe repro --jobs N`: stages of independent branches side by side, each after its upstream stages.

The scheduler against a scripted runner (order, concurrency, failure), then the real thing: a scratch DVC project
whose two independent stages must overlap in time, whose dependent stage must wait, and which DVC afterwards
calls up to date.
"""

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from seqpipe.errors import SeqpipeError
from seqpipe.repro import StageRun, priorities, repro, schedule

# a_prepare -> a_train_x -> a_eval ; b_prepare -> b_eval ; summary after both evals
ORDER = ["a_prepare", "b_prepare", "a_train_x", "a_eval", "b_eval", "summary"]
UPSTREAM = {
    "a_prepare": set(),
    "b_prepare": set(),
    "a_train_x": {"a_prepare"},
    "a_eval": {"a_train_x"},
    "b_eval": {"b_prepare"},
    "summary": {"a_eval", "b_eval"},
}


class ScriptedRunner:
    """Records start/end order and the most stages it saw at once; fails the stages it is told to."""

    def __init__(self, fail=()):
        self.fail, self.events, self.lock = set(fail), [], threading.Lock()
        self.active = self.peak = 0

    def __call__(self, name):
        with self.lock:
            self.events.append(("start", name))
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.05)
        with self.lock:
            self.active -= 1
            self.events.append(("end", name))
        return StageRun(name, 1 if name in self.fail else 0, 0.05, True)


def test_priorities_are_the_longest_chain_to_the_end_in_expected_seconds():
    rank = priorities(ORDER, UPSTREAM)  # defaults: a fit 300 s, any other stage 30 s
    assert rank == {"summary": 30, "a_eval": 60, "b_eval": 60, "a_train_x": 360, "a_prepare": 390, "b_prepare": 90}
    measured = {"a_train_x": 5.0, "b_prepare": 500.0}  # the last run's times win over the defaults
    assert priorities(ORDER, UPSTREAM, measured)["b_prepare"] > priorities(ORDER, UPSTREAM, measured)["a_prepare"]


def test_the_longest_measured_stage_starts_first(tmp_path):
    """With the last run's times, a long fit that is ready starts before shorter ready stages listed earlier."""
    order = ["short_train_a", "short_train_b", "long_train"]
    upstream = {n: set() for n in order}
    runner = ScriptedRunner()
    schedule(order, upstream, 1, runner, {"short_train_a": 60.0, "short_train_b": 70.0, "long_train": 700.0})
    assert [n for kind, n in runner.events if kind == "start"][0] == "long_train"


def test_every_stage_runs_once_after_its_upstream_and_at_most_jobs_at_a_time():
    runner = ScriptedRunner()
    results = schedule(ORDER, UPSTREAM, 2, runner)
    assert sorted(r.name for r in results) == sorted(ORDER)
    starts = [n for kind, n in runner.events if kind == "start"]
    assert sorted(starts) == sorted(ORDER)
    ends = [n for kind, n in runner.events if kind == "end"]
    for name, ups in UPSTREAM.items():
        started_at = runner.events.index(("start", name))
        assert all(runner.events.index(("end", u)) < started_at for u in ups), name
    assert runner.peak == 2
    assert starts[:2] == ["a_prepare", "b_prepare"] and ends[-1] == "summary"


def test_one_job_runs_the_longest_chain_first():
    runner = ScriptedRunner()
    schedule(ORDER, UPSTREAM, 1, runner)
    starts = [n for kind, n in runner.events if kind == "start"]
    assert runner.peak == 1
    assert starts == ["a_prepare", "a_train_x", "b_prepare", "a_eval", "b_eval", "summary"]


def test_a_failure_starts_nothing_new_and_skips_what_depends_on_it():
    runner = ScriptedRunner(fail={"a_prepare"})
    results = schedule(ORDER, UPSTREAM, 1, runner)
    assert [(r.name, r.returncode) for r in results] == [("a_prepare", 1)]


def test_bad_arguments_are_errors():
    with pytest.raises(SeqpipeError, match="--jobs"):
        schedule(ORDER, UPSTREAM, 0, ScriptedRunner())
    with pytest.raises(SeqpipeError, match="not in the pipeline"):
        schedule(["x"], {"x": {"y"}}, 1, ScriptedRunner())


def test_outside_a_dvc_project_it_says_where_to_run_it(tmp_path):
    with pytest.raises(SeqpipeError, match="no dvc.yaml") as e:
        repro(tmp_path)
    assert "project root" in str(e.value)
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    with pytest.raises(SeqpipeError, match="not a DVC project"):
        repro(tmp_path)


def _stage(out: str, deps: list[str], seconds: float) -> dict:
    code = (
        "import sys, time, pathlib; t = time.time(); time.sleep(float(sys.argv[2])); "
        "pathlib.Path(sys.argv[1]).write_text(f'{t} {time.time()}')"
    )
    return {"cmd": f'"{sys.executable}" -c "{code}" {out} {seconds}', "deps": deps, "outs": [out]}


def test_independent_dvc_stages_overlap_and_dvc_agrees_the_pipeline_is_done(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    stages = {
        "first": _stage("first.txt", [], 2.0),
        "second": _stage("second.txt", [], 2.0),
        "after_first": _stage("after.txt", ["first.txt"], 0.1),
    }
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    dvc = [str(Path(sys.executable).parent / "dvc")]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)

    assert repro(tmp_path, jobs=2) == 0
    span = {n: [float(x) for x in (tmp_path / f"{n}.txt").read_text().split()] for n in ("first", "second", "after")}
    assert span["first"][0] < span["second"][1] and span["second"][0] < span["first"][1], "no overlap"
    assert span["after"][0] >= span["first"][1]
    assert set(yaml.safe_load((tmp_path / "dvc.lock").read_text())["stages"]) == set(stages)
    status = subprocess.run([*dvc, "status"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert "up to date" in status
    assert (tmp_path / "mlruns" / "mlflow.db").exists()  # the store exists before stages start

    capsys.readouterr()
    assert repro(tmp_path, jobs=2) == 0  # nothing changed: every stage is found up to date, none reruns
    out = capsys.readouterr().out
    assert out.count("up to date (") == 3 and "Running stage" not in out


def test_an_experiment_a_stage_alongside_created_first_is_found(tmp_path, monkeypatch):
    """Two stages of one domain start together: both look the experiment up, find nothing, and try to create
    it; the one that loses must use the other's instead of failing."""
    import mlflow

    from seqpipe import tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    previous = mlflow.get_tracking_uri()
    try:
        tracking.init_store(tmp_path)
        mlflow.set_tracking_uri(tracking.tracking_uri())
        theirs = mlflow.create_experiment(tracking.experiment_name("text"))  # the other stage won the race
        lookup, calls = mlflow.get_experiment_by_name, []

        def before_the_other_created_it(name):  # this stage's first lookup ran before the other's create
            calls.append(name)
            return None if len(calls) == 1 else lookup(name)

        monkeypatch.setattr(mlflow, "get_experiment_by_name", before_the_other_created_it)
        assert tracking.ensure_experiment("text") == theirs
        assert len(calls) == 2
        assert lookup(tracking.experiment_name("text")).tags["mlflow.experimentKind"] == "custom_model_development"
    finally:
        mlflow.set_tracking_uri(previous)


def test_targets_run_only_what_they_read(tmp_path, monkeypatch):
    """`seqpipe repro <stage>` (what `make demo` uses) runs the stage and its upstream, nothing else."""
    from seqpipe.repro import upstream_closure

    assert upstream_closure(["a_eval"], UPSTREAM) == {"a_eval", "a_train_x", "a_prepare"}
    with pytest.raises(SeqpipeError, match="no stage named nope"):
        upstream_closure(["nope"], UPSTREAM)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    stages = {"first": _stage("first.txt", [], 0.1), "second": _stage("second.txt", [], 0.1)}
    stages["after_first"] = _stage("after.txt", ["first.txt"], 0.1)
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    subprocess.run([str(Path(sys.executable).parent / "dvc"), "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    assert repro(tmp_path, jobs=2, targets=["after_first"]) == 0
    assert (tmp_path / "after.txt").exists() and (tmp_path / "first.txt").exists()
    assert not (tmp_path / "second.txt").exists()


def test_the_demo_runs_one_experiment_of_every_dataset(tmp_path):
    """`make demo` picks one evaluate stage a dataset of the real dvc.yaml, in a scratch copy on the fast profile."""
    from seqpipe.demo import MARKER, demo_stages, make_project

    repo = Path(__file__).resolve().parents[2]
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    chosen = demo_stages(stages)
    datasets = sorted(p.name for p in (repo / "pipelines").iterdir() if (p / "base.yaml").exists())
    assert sorted(s.split("_evaluate_")[0] for s in chosen) == datasets
    out = tmp_path / "demo"
    make_project(repo, out)
    assert yaml.safe_load((out / "params.yaml").read_text())["profile"] == "fast"
    assert (out / MARKER).exists() and (out / ".dvc").is_dir() and (out / "pipelines/text/lstm.yaml").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(SeqpipeError, match="is not a seqpipe demo"):
        make_project(repo, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_stage_times_are_recorded_for_the_next_run(tmp_path):
    from seqpipe.repro import STAGE_SECONDS, load_stage_seconds, save_stage_seconds

    (tmp_path / "pipelines").mkdir()
    (tmp_path / STAGE_SECONDS).write_text('{"kept": 12.0, "a": 1.0}')
    save_stage_seconds(tmp_path, [StageRun("a", 0, 42.04, True), StageRun("b", 0, 3.0, False)])
    assert load_stage_seconds(tmp_path) == {"a": 42.0, "kept": 12.0}  # up-to-date stages keep their old time


def test_stages_find_this_interpreters_commands_first(monkeypatch):
    """`.venv/bin/seqpipe repro` (or demo) without an activated venv: the stages' `seqpipe` is the venv's."""
    from seqpipe.repro import stage_env

    monkeypatch.setenv("PATH", "/usr/bin")
    assert stage_env()["PATH"].split(":")[:2] == [str(Path(sys.executable).parent), "/usr/bin"]


def test_the_demo_summarizes_the_whole_evaluations(tmp_path):
    """The demo's table reads reports/<exp>/evaluation.json (a headline-only metrics/ once left it empty)."""
    import json

    from seqpipe.demo import evaluations
    from seqpipe.summary import summary

    doc = {
        "experiment": "x",
        "domain": "d",
        "primary_metric": "test_mae",
        "direction": "lower",
        "model": {"test_mae": 0.5},
        "baselines": {"b": {"test_mae": 1.0}},
        "best_baseline": "b",
    }
    (tmp_path / "reports" / "x").mkdir(parents=True)
    (tmp_path / "reports" / "x" / "evaluation.json").write_text(json.dumps(doc))
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "x.json").write_text(json.dumps({"metric": "test_mae", "margin": 0.5}))
    table = summary(tmp_path / "metrics", files=evaluations(tmp_path))
    assert "| x | d | test_mae" in table
