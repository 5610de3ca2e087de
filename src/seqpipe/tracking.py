"""MLflow and DVC conventions in one place.

- Tracking URI: $MLFLOW_TRACKING_URI if set, else a sqlite store at mlruns/mlflow.db with
  artifacts under mlruns/artifacts (MLflow >= 3.13 refuses the plain file store).
- One MLflow experiment a domain ("seqpipe-<domain>"); run name = experiment name.
- metrics/<experiment>.json: one schema for every domain (see ``write_metrics``), written atomically.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

from seqpipe.errors import SeqpipeError  # noqa: E402

MLRUNS = Path("mlruns")


def tracking_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    MLRUNS.mkdir(exist_ok=True)
    return f"sqlite:///{(MLRUNS / 'mlflow.db').resolve()}"


def artifact_location() -> str | None:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    return (MLRUNS / "artifacts").resolve().as_uri()


def experiment_name(domain: str) -> str:
    return f"seqpipe-{domain}"


def ensure_experiment(domain: str) -> str:
    """Create (or find) the domain's MLflow experiment; returns its id."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    name = experiment_name(domain)
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return mlflow.create_experiment(name, artifact_location=artifact_location())


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
    }


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a file so readers see the old content or the new, never a half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    mlflow_run_id: str | None,
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
        "mlflow_run_id": mlflow_run_id,
        "data_fingerprint": data_fingerprint,
        **(extra or {}),
    }
    atomic_write_text(path, json.dumps(doc, indent=2, sort_keys=False) + "\n")
    return doc
