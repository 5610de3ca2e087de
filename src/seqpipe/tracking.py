"""MLflow and DVC conventions in one place.

- Tracking URI: $MLFLOW_TRACKING_URI if set, else a sqlite store at <project>/mlruns/mlflow.db with
  artifacts under <project>/mlruns/artifacts (MLflow >= 3.13 refuses the plain file store). The
  project is $DVC_ROOT when DVC runs the stage: `dvc exp run --temp` / `--queue` run in a copy under
  .dvc/tmp/exps and DVC points DVC_ROOT at the real project, so every run lands in one store.
- One MLflow experiment a domain ("seqpipe-<domain>"); run name = experiment name.
- metrics/<experiment>.json: one schema for every domain (see ``write_metrics``), written atomically.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

from seqpipe import io  # noqa: E402
from seqpipe.errors import SeqpipeError  # noqa: E402

log = logging.getLogger(__name__)


def mlruns_dir(project: Path | None = None) -> Path:
    """<project>/mlruns: the DVC project root when DVC runs the stage (also for temp/queued experiments)."""
    return Path(project or os.environ.get("DVC_ROOT") or ".").resolve() / "mlruns"


def tracking_uri(project: Path | None = None) -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    mlruns_dir(project).mkdir(exist_ok=True)
    return f"sqlite:///{mlruns_dir(project) / 'mlflow.db'}"


def artifact_location() -> str | None:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    return (mlruns_dir() / "artifacts").as_uri()


def experiment_name(domain: str) -> str:
    return f"seqpipe-{domain}"


# What these experiments are (model training, not GenAI). MLflow 3.17's UI still opens an experiment on its GenAI
# overview unless the link says ``workflowType=machine_learning`` (or the user picked "Model training" once):
# runs_url() builds such links, and fit and `make ui` print them.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
UI_BASE = "http://127.0.0.1:5000"  # `make ui`


def runs_url(experiment_id: str, run_id: str | None = None, base: str = UI_BASE) -> str:
    """The UI link that opens on the experiment's training runs table (or on one run)."""
    page = f"runs/{run_id}" if run_id else "runs"
    return f"{base}/#/experiments/{experiment_id}/{page}?workflowType=machine_learning"


def ui_links(base: str = UI_BASE) -> str:
    """One line an experiment of the project's store: its name and its training-runs link."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    exps = [e for e in mlflow.search_experiments() if e.name.startswith("seqpipe-")]
    return "\n".join(f"  {e.name}: {runs_url(e.experiment_id, base=base)}" for e in exps) or "  (no runs yet)"


def init_store(project: Path | None = None) -> None:
    """Open the project's tracking store once, which creates a new sqlite store's tables (`seqpipe repro` does it
    before starting stages side by side: two processes creating them at once collide)."""
    from seqpipe import tracking_store

    tracking_store.init_locked(tracking_uri(project), mlruns_dir(project))


def prepare_store() -> None:
    """The default store before a fit logs to it: its tables created under a lock (fits started at once), and
    its artifact locations re-pointed here if the project was copied or moved (seqpipe.tracking_store)."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return
    from seqpipe import tracking_store

    init_store()
    with tracking_store.store_lock(mlruns_dir()):
        tracking_store.relocate(mlruns_dir() / "mlflow.db", mlruns_dir())


def ensure_experiment(domain: str) -> str:
    """Create (or find) the domain's MLflow experiment, tagged as model training; returns its id."""
    import mlflow
    from mlflow.exceptions import MlflowException

    prepare_store()
    mlflow.set_tracking_uri(tracking_uri())
    name = experiment_name(domain)
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        try:
            return mlflow.create_experiment(name, artifact_location=artifact_location(), tags=dict([EXPERIMENT_KIND]))
        except MlflowException:  # a stage running beside this one created it first
            exp = mlflow.get_experiment_by_name(name)
            if exp is None:
                raise
    if exp.tags.get(EXPERIMENT_KIND[0]) is None:  # made by an older seqpipe
        mlflow.MlflowClient(tracking_uri()).set_experiment_tag(exp.experiment_id, *EXPERIMENT_KIND)
    return exp.experiment_id


def dataset_ref(meta: dict[str, Any], prepared_dir: str | Path) -> tuple[str, str]:
    """The prepared store's MLflow dataset name and digest (what metrics link to)."""
    return str(meta.get("name") or Path(prepared_dir).name), str(meta["fingerprint"])[:16]


def log_dataset(client: Any, run_id: str, meta: dict[str, Any], prepared_dir: str | Path) -> None:
    """The prepared store as the run's MLflow dataset input (name, fingerprint, source): the runs table's
    Dataset column, and runs trained on the same data share the digest."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    spec = meta.get("spec") or {}
    profile = {
        "domain": meta.get("domain"),
        "input": spec.get("input"),
        "target": spec.get("target"),
        "source": meta.get("source"),
    }
    name, digest = dataset_ref(meta, prepared_dir)
    dataset = Dataset(
        name=name,
        digest=digest,
        source_type="local",
        source=json.dumps({"uri": str(Path(prepared_dir).resolve())}),
        profile=json.dumps(profile, default=str),
    )
    client.log_inputs(run_id, datasets=[DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "train")])])


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def hardware() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()}x {torch.cuda.get_device_name(0)}"
    return f"cpu x{os.cpu_count()} ({platform.machine()})"


def run_tags(cfg: dict[str, Any], stage: str, fingerprint: str) -> dict[str, str]:
    from seqpipe import __version__

    return {
        "git_commit": git_commit(),
        "dvc_stage": stage,
        "data_fingerprint": fingerprint,
        "seqpipe_version": __version__,
        "hardware": hardware(),
        "config": cfg.get("config_path", ""),
        "profile": cfg.get("profile", "default"),
        **({"dvc_experiment": os.environ["DVC_EXP_NAME"]} if os.environ.get("DVC_EXP_NAME") else {}),
    }


def file_sha256(path: str | Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def evaluation_run(run: dict[str, Any], ckpt: Path, cfg: dict[str, Any]) -> str:
    """The MLflow run evaluate logs into: the training run when this tracking store has it, else a new
    run tagged with the checkpoint's checksum (a fresh clone, another tracking URI, a wiped mlruns/)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri())
    run_id = run.get("mlflow_run_id")
    if run_id:
        try:
            client.get_run(run_id)
            return run_id
        except MlflowException:
            pass
    exp_id = ensure_experiment(cfg["domain"])
    sha = file_sha256(ckpt)
    tags = {
        **run_tags(cfg, "evaluate", run.get("data_fingerprint", "")),
        "checkpoint_sha256": sha,
        "training_run_id": str(run_id),
        "mlflow.runName": cfg["name"],
    }
    new = client.create_run(exp_id, tags=tags, run_name=cfg["name"])
    client.set_terminated(new.info.run_id)
    log.warning(
        "training run %s is not in the tracking store %s: evaluation logged to a new run %s tagged "
        "checkpoint_sha256=%s",
        run_id,
        tracking_uri(),
        new.info.run_id,
        sha[:12],
    )
    return new.info.run_id


def write_metrics(
    path: str | Path,
    *,
    experiment: str,
    domain: str,
    task: str,
    primary_metric: str,
    direction: str,
    model: dict[str, float],
    baselines: dict[str, dict[str, float]],
    data_fingerprint: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The one metrics schema every experiment writes (read by `dvc metrics show` and the summary)."""
    if direction not in ("lower", "higher"):
        raise SeqpipeError(f"direction must be 'lower' or 'higher', got {direction!r}")
    if primary_metric not in model:
        raise SeqpipeError(f"primary metric '{primary_metric}' missing from model metrics {sorted(model)}")
    best = None
    scored = {k: v[primary_metric] for k, v in baselines.items() if primary_metric in v}
    if scored:
        pick = min if direction == "lower" else max
        best = pick(scored, key=scored.get)
    doc = {
        "experiment": experiment,
        "domain": domain,
        "task": task,
        "primary_metric": primary_metric,
        "direction": direction,
        "model": {k: float(v) for k, v in model.items()},
        "baselines": {b: {k: float(v) for k, v in m.items()} for b, m in baselines.items()},
        "best_baseline": best,
        "data_fingerprint": data_fingerprint,
        **(extra or {}),
    }
    io.write_json(path, doc, indent=2, sort_keys=False)
    return doc


def headline(doc: dict[str, Any]) -> dict[str, Any]:
    """What metrics/<experiment>.json keeps: the primary metric of model and best baseline, the margin (> 0: the
    model is better) with its 95% interval and the verdict, in short keys every experiment shares, so `dvc metrics
    show` is one narrow table (the whole document: reports/<experiment>/evaluation.json)."""
    from seqpipe.evaluation.reported import verdict

    pm, best, lower = doc["primary_metric"], doc.get("best_baseline"), doc["direction"] == "lower"
    model = doc["model"][pm]
    baseline = doc["baselines"][best][pm] if best else None
    margin = None if baseline is None else (baseline - model if lower else model - baseline)
    block = doc.get("margin") if isinstance(doc.get("margin"), dict) and doc["margin"].get("vs") == best else None
    low, high = (-block["ci95"][1], -block["ci95"][0]) if block and lower else (block or {}).get("ci95", (None, None))
    return {
        "metric": pm,
        "model": model,
        "baseline": baseline,
        "best": best,
        "margin": margin,
        "ci_low": low,
        "ci_high": high,
        "verdict": verdict(block, doc["direction"]) if block else None,
    }
