"""Faults in what surrounds a fit: damaged checkpoints, diverged training. Each one ends in a one-line
seqpipe error naming the file and the fix, and loses nothing that was published before."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from helpers import text_experiment, write_corpus
from seqpipe.cli import main
from seqpipe.errors import SeqpipeError


def _config(tmp: Path, name: str = "tiny", **model: object) -> Path:
    write_corpus(tmp, 3000)
    cfg = {
        "name": name,
        **text_experiment("data/prepared/tiny", seq_len=16, batch_size=8, cell="gru", hidden_size=16, **model),
        "trainer": {"max_steps": 6, "val_check_interval": 3, "limit_val_batches": 1, "enable_progress_bar": False},
        "fit": {"grad_every_n_steps": 3},
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny published text model (models/tiny/), trained once for the tests below to damage copies of."""
    import os

    tmp = tmp_path_factory.mktemp("faults")
    old = Path.cwd()
    os.chdir(tmp)
    try:
        _config(tmp)
        assert main(["fit", "--config", "tiny.yaml"]) == 0
    finally:
        os.chdir(old)
    return tmp / "models" / "tiny"


def _copy(model_dir: Path, tmp: Path) -> Path:
    out = tmp / "models" / "copy"
    shutil.copytree(model_dir, out)
    return out


def test_a_published_checkpoint_records_its_hash_and_class(trained: Path) -> None:
    import torch

    from seqpipe.models.loading import CLASS_KEY, file_sha256

    assert json.loads((trained / "checksums.json").read_text()) == {"best.ckpt": file_sha256(trained / "best.ckpt")}
    assert "sha256" not in (trained / "run.json").read_text()  # run.json stays free of the checkpoint's paths
    ckpt = torch.load(trained / "best.ckpt", map_location="cpu", weights_only=True)
    assert ckpt[CLASS_KEY] == "seqpipe.models.recurrent.RecurrentModel"


def test_a_flipped_byte_is_refused_naming_the_file(trained: Path, tmp_path: Path) -> None:
    from seqpipe.models.loading import load_model

    d = _copy(trained, tmp_path)
    data = bytearray((d / "best.ckpt").read_bytes())
    data[len(data) // 2] ^= 0x01
    (d / "best.ckpt").write_bytes(bytes(data))
    with pytest.raises(SeqpipeError, match="differ from the SHA-256 recorded") as e:
        load_model(d / "best.ckpt")
    assert str(d / "best.ckpt") in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("keep", [0.5, 0.0])
def test_a_truncated_checkpoint_is_a_one_line_error(trained: Path, tmp_path: Path, keep: float) -> None:
    from seqpipe.models.loading import load_model

    d = _copy(trained, tmp_path)
    (d / "checksums.json").unlink()  # no recorded hash: the reader itself must refuse the file
    data = (d / "best.ckpt").read_bytes()
    (d / "best.ckpt").write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(SeqpipeError, match="cannot read the checkpoint") as e:
        load_model(d / "best.ckpt")
    assert "\n" not in str(e.value) and "retrain" in str(e.value)


def test_a_checkpoint_away_from_its_run_json_loads_as_its_class(trained: Path, tmp_path: Path) -> None:
    """MLflow's checkpoints/best.ckpt has no run.json beside it: the class inside the checkpoint is enough."""
    from seqpipe.models.loading import load_model

    lone = tmp_path / "best.ckpt"
    shutil.copy(trained / "best.ckpt", lone)
    assert type(load_model(lone)).__name__ == "RecurrentModel"


def test_a_checkpoint_naming_a_non_model_class_is_refused(trained: Path, tmp_path: Path) -> None:
    import torch

    from seqpipe.models.loading import CLASS_KEY, load_model

    ckpt = torch.load(trained / "best.ckpt", map_location="cpu", weights_only=True)
    ckpt[CLASS_KEY] = "subprocess.Popen"
    torch.save(ckpt, tmp_path / "evil.ckpt")
    with pytest.raises(SeqpipeError, match="not a LightningModule"):
        load_model(tmp_path / "evil.ckpt")


def test_a_diverged_fit_publishes_nothing_and_keeps_the_old_model(
    trained: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    from seqpipe.models.recurrent import RecurrentModel

    real = RecurrentModel.loss_and_metrics

    def diverged(self, output, targets, smoothing=0.0):  # what non-finite data or a runaway LR leads to
        loss, metrics = real(self, output, targets, smoothing)
        return loss * float("inf"), metrics

    monkeypatch.setattr(RecurrentModel, "loss_and_metrics", diverged)
    _config(tmp_path, name="copy")
    old = _copy(trained, tmp_path)
    before = (old / "best.ckpt").read_bytes()
    assert main(["fit", "--config", "copy.yaml"]) == 2
    assert "it is not published" in capsys.readouterr().err
    assert (old / "best.ckpt").read_bytes() == before


# --- the surroundings of a fit: tracking store, resume, interrupts, full disks, precision (docs/reliability.md) ---


def _runs(project: Path) -> list:
    """Every run of the project's own store: (run_id, status, tags, artifact_uri)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    exps = [e.experiment_id for e in client.search_experiments()]
    return [(r.info.run_id, r.info.status, r.data.tags, r.info.artifact_uri) for r in client.search_runs(exps)]


def _tracking_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "MLflow tracking failed" in r.getMessage()]


def test_an_unwritable_artifact_store_is_one_warning_and_the_model_is_published(in_tmp: Path, caplog) -> None:
    """The artifact store is unwritable (a moved project, a full disk, an outage): the fit still publishes."""
    from seqpipe import tracking

    _config(in_tmp)
    exp = tracking.ensure_experiment("text")  # its runs' files go under mlruns/<id>/: make that a file
    (in_tmp / "mlruns" / exp).write_text("not a folder")
    assert main(["fit", "--config", "tiny.yaml"]) == 0
    assert (in_tmp / "models" / "tiny" / "best.ckpt").is_file()
    warnings = _tracking_warnings(caplog)
    assert len(warnings) == 1 and "NotADirectoryError" in warnings[0]
    [(_, status, tags, _)] = _runs(in_tmp)
    assert status == "FAILED" and "NotADirectoryError" in tags["tracking_failure"]


def test_a_failing_metric_store_warns_once_not_every_step(in_tmp: Path, caplog, monkeypatch) -> None:
    from mlflow.tracking import MlflowClient

    real, calls = MlflowClient.log_batch, []

    def flaky(self, run_id, metrics=(), *args, **kwargs):
        calls.append(1)
        if len(calls) > 1:  # the store goes away after the first write
            raise OSError(5, "Input/output error")
        return real(self, run_id, metrics, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", flaky)
    _config(in_tmp)
    assert main(["fit", "--config", "tiny.yaml"]) == 0
    assert (in_tmp / "models" / "tiny" / "best.ckpt").is_file()
    assert len(_tracking_warnings(caplog)) == 1 and len(calls) == 2  # later writes skipped, not retried a step
    monkeypatch.setattr(MlflowClient, "log_batch", real)
    [(_, status, tags, _)] = _runs(in_tmp)
    assert status == "FAILED" and "Input/output error" in tags["tracking_failure"]


def test_a_copied_project_writes_its_artifacts_under_itself(in_tmp: Path, monkeypatch) -> None:
    orig = in_tmp / "proj"
    orig.mkdir()
    monkeypatch.chdir(orig)
    _config(orig)
    assert main(["fit", "--config", "tiny.yaml"]) == 0
    before = sorted(p for p in (orig / "mlruns").rglob("*") if p.name != ".store.lock")
    copy = in_tmp / "proj2"
    shutil.copytree(orig, copy, symlinks=True)
    monkeypatch.chdir(copy)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # mlflow.set_tracking_uri sets it: a new process has none
    assert main(["fit", "--config", "tiny.yaml"]) == 0
    after = sorted(p for p in (orig / "mlruns").rglob("*") if p.name != ".store.lock")
    assert after == before  # nothing new under the original project
    uris = [uri for _, _, _, uri in _runs(copy)]
    assert len(uris) == 2 and all(u.startswith(str(copy / "mlruns") + "/") for u in uris)
    new = next(run_id for run_id, *_ in _runs(copy) if not (orig / "mlruns" / "1" / run_id).exists())
    assert (copy / "mlruns" / "1" / new / "artifacts" / "checkpoints" / "best.ckpt").is_file()


def test_resume_when_the_store_lost_the_run_starts_a_tagged_new_run(in_tmp: Path, caplog) -> None:
    _config(in_tmp)
    assert main(["fit", "--config", "tiny.yaml"]) == 0
    work = in_tmp / "models" / ".tiny.tmp"  # an interrupted run whose MLflow run is gone (wiped or other store)
    work.mkdir()
    shutil.copy(in_tmp / "models" / "tiny" / "last.ckpt", work / "last.ckpt")
    (work / "run_state.json").write_text(json.dumps({"mlflow_run_id": "0" * 32}))
    assert main(["fit", "--config", "tiny.yaml", "--resume", "--set", "trainer.max_steps=9"]) == 0
    assert any("not in the store" in r.getMessage() for r in caplog.records)
    new = [tags for _, status, tags, _ in _runs(in_tmp) if tags.get("lost_run_id") == "0" * 32]
    assert len(new) == 1 and new[0]["resumed_checkpoint"] == str(Path("models/.tiny.tmp/last.ckpt"))
    assert json.loads((in_tmp / "models" / "tiny" / "run.json").read_text())["global_steps"] == 9


def test_a_sigkilled_run_is_marked_killed_by_the_next_start(in_tmp: Path) -> None:
    import subprocess

    from mlflow.tracking import MlflowClient

    from seqpipe import tracking
    from seqpipe.tracking_guard import claim_run, reap_killed, run_exists

    exp = tracking.ensure_experiment("text")
    client = MlflowClient(tracking.tracking_uri())
    dead, alive = client.create_run(exp).info.run_id, client.create_run(exp).info.run_id
    gone = subprocess.Popen(["true"])
    gone.wait()
    claim_run(client, dead)
    client.set_tag(dead, "fit_pid", str(gone.pid))  # a process that no longer exists
    claim_run(client, alive)  # this one: still running
    assert reap_killed(client, exp) == [dead]
    assert client.get_run(dead).info.status == "KILLED" and client.get_run(alive).info.status == "RUNNING"
    client.delete_run(dead)  # a deleted run is lost to a resume, like one the store never had
    assert not run_exists(client, dead) and not run_exists(client, "0" * 32) and run_exists(client, alive)


@pytest.mark.slow  # three fresh interpreters importing MLflow side by side: ~20 s on a loaded machine
def test_three_fits_starting_at_once_create_the_store_once(in_tmp: Path) -> None:
    import os
    import subprocess
    import sys

    code = "from seqpipe import tracking; print(tracking.ensure_experiment('text'))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], cwd=in_tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [e.decode()[-800:] for _, e in outs]
    assert len({o.strip() for o, _ in outs}) == 1  # one experiment, the same id for all three


def test_ctrl_c_in_repro_stops_the_stages_and_prints_one_line(in_tmp: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    bindir = Path(sys.executable).parent
    if not (bindir / "dvc").exists():
        pytest.skip("dvc is not installed")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([str(bindir / "dvc"), "init", "--no-scm", "-q"], cwd=in_tmp, env=env, check=True)
    marker = in_tmp / "started"
    (in_tmp / "dvc.yaml").write_text(f"stages:\n  nap:\n    cmd: touch {marker} && sleep 60\n    outs: [never]\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "seqpipe.cli", "repro", "-j", "1"],
        cwd=in_tmp,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marker.exists(), "the stage never started"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "seqpipe repro: interrupted; stopped 1 running stage(s)" in err
    assert subprocess.run(["pgrep", "-f", f"touch {marker}"], capture_output=True).stdout == b""


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(tmp_path: Path) -> None:
    import errno

    from seqpipe import io

    def full(f):
        f.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(SeqpipeError, match="no space left on the device writing best.ckpt") as e:
        io.write_with(tmp_path / "best.ckpt", full)
    assert isinstance(e.value, OSError) and e.value.errno == errno.ENOSPC  # callers that tolerate OSError still do
    assert "\n" not in str(e.value) and list(tmp_path.iterdir()) == []


def test_a_full_disk_during_a_fit_is_exit_2_and_no_partial_checkpoint(in_tmp: Path, monkeypatch, capsys) -> None:
    import errno

    import torch

    def full(obj, f, *args, **kwargs):
        f.write(b"partial checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    _config(in_tmp)
    assert main(["fit", "--config", "tiny.yaml"]) == 2
    err = capsys.readouterr().err
    assert "no space left on the device writing" in err and "Traceback" not in err
    work = in_tmp / "models" / ".tiny.tmp"
    assert not [p.name for p in work.iterdir() if p.suffix == ".ckpt" or ".ckpt." in p.name]
    assert not (in_tmp / "models" / "tiny").exists()


def test_resume_with_a_changed_hyperparameter_is_refused_naming_it(in_tmp: Path, capsys) -> None:
    from seqpipe.training import fit as _  # noqa: F401 -- imported before the interrupt below

    _config(in_tmp)
    assert main(["fit", "--config", "tiny.yaml", "--set", "trainer.max_steps=3"]) == 0
    work = in_tmp / "models" / ".tiny.tmp"
    shutil.copytree(in_tmp / "models" / "tiny", work)  # as if interrupted after step 3
    (work / "run.json").unlink()
    run_id = json.loads((in_tmp / "models" / "tiny.training.json").read_text())["mlflow_run_id"]
    from seqpipe import runs
    from seqpipe.config import load_config

    cfg = load_config("tiny.yaml", ["trainer.max_steps=3"], "default")
    (work / "run_state.json").write_text(json.dumps({"mlflow_run_id": run_id, "config": runs.resumed_sections(cfg)}))
    capsys.readouterr()
    assert main(["fit", "--config", "tiny.yaml", "--resume", "--set", "model.init_args.lr=0.5"]) == 2
    err = capsys.readouterr().err
    assert "changed hyperparameters: model.init_args.lr" in err and len(err.strip().splitlines()) == 1
    assert main(["fit", "--config", "tiny.yaml", "--resume", "--set", "fit.grad_every_n_steps=2"]) == 2
    assert "fit.grad_every_n_steps" in capsys.readouterr().err


def test_resuming_a_finished_checkpoint_is_nothing_to_resume(in_tmp: Path, caplog) -> None:
    _config(in_tmp)
    assert main(["fit", "--config", "tiny.yaml"]) == 0
    before = (in_tmp / "models" / "tiny" / "best.ckpt").read_bytes()
    assert main(["fit", "--config", "tiny.yaml", "--resume", "models/tiny/last.ckpt"]) == 0
    assert any("nothing to resume, already trained" in r.getMessage() for r in caplog.records)
    assert len(_runs(in_tmp)) == 1  # no empty run marked FINISHED
    assert (in_tmp / "models" / "tiny" / "best.ckpt").read_bytes() == before


def _gru(cell: str = "gru") -> object:
    from seqpipe.data.spec import DataSpec
    from seqpipe.models import RecurrentModel

    spec = DataSpec(input="tokens", target="next_token", vocab_size=20, causal=True).to_dict()
    return RecurrentModel(spec, cell=cell, hidden_size=8, num_layers=1)


def test_a_read_only_precision_cache_says_so(tmp_path: Path, monkeypatch) -> None:
    from seqpipe import precision

    (tmp_path / "file").write_text("")  # a cache dir that cannot be created or written (also as root)
    monkeypatch.setenv("SEQPIPE_CACHE_DIR", str(tmp_path / "file" / "sub"))
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    monkeypatch.setattr(precision, "measure", lambda m, b, s: 0.5)
    choice = precision.choose(_gru(), batch=4, seq_len=8)
    assert (
        choice["precision"] == "bf16-mixed" and "not cached" in choice["reason"] and "cached in" not in choice["reason"]
    )


def test_precision_near_the_margin_is_stable_and_old_cache_entries_decide_as_before(
    tmp_path: Path, monkeypatch
) -> None:
    from seqpipe import precision

    monkeypatch.setenv("SEQPIPE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    gru, lstm = _gru("gru"), _gru("lstm")
    ratios = iter([0.87, 0.82])  # the text GRU's spread: fresh measurements on both sides of the old margin
    monkeypatch.setattr(precision, "measure", lambda m, b, s: next(ratios))
    assert precision.choose(gru, batch=4, seq_len=8)["precision"] == "32-true"  # inside the band: 32-bit
    assert precision.choose(gru, batch=4, seq_len=8)["precision"] == "32-true"  # cached: the same, not re-measured
    assert precision.choose(lstm, batch=4, seq_len=8)["precision"] == "bf16-mixed"  # clearly faster
    cache = json.loads((tmp_path / "precision.json").read_text())
    assert all(isinstance(v, float) for k, v in cache.items() if not k.startswith("choice|"))  # as older caches
    # an entry cached before choices were recorded (like this machine's text GRU at 0.897) decides as before
    (tmp_path / "precision.json").write_text(json.dumps({k: 0.897 for k in cache if not k.startswith("choice|")}))
    assert precision.choose(gru, batch=4, seq_len=8)["precision"] == "bf16-mixed"
    assert precision.choose(gru, batch=4, seq_len=8)["bf16_over_32bit"] == 0.897
