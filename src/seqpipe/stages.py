"""The pipeline stages that `dvc repro` runs: preprocess -> fit -> baselines -> evaluate -> summary.

Each stage reads an experiment config (seqpipe.config) and writes only its declared outputs,
atomically: models/<name>/ is trained in a temporary directory and swapped in when complete;
metrics files are written whole or not at all. Training lives in seqpipe.training and the table in
seqpipe.summary; this module imports torch only inside the stages that run a model, so a preprocess with a
torch-free store builder (text) holds numpy alone in memory.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

from seqpipe import io, registry, tracking
from seqpipe.errors import SeqpipeError
from seqpipe.project import MODELS, REPORTS, configure_threads, make_datamodule, training_record
from seqpipe.summary import EVALUATION, METRICS

log = logging.getLogger(__name__)


def fit(cfg: dict[str, Any], resume: str | None = None) -> Path:
    """Train one experiment (seqpipe.training.fit): models/<name>/, logged to MLflow."""
    from seqpipe.training import fit as train

    return train(cfg, resume=resume)


def summary(metrics_dir: Path = METRICS, out: Path | None = None, files: list[Path] | None = None) -> str:
    """The markdown table over metrics files (seqpipe.summary.summary)."""
    from seqpipe.summary import summary as table

    return table(metrics_dir, out=out, files=files)


def preprocess(cfg: dict[str, Any]) -> Path:
    """Raw source -> prepared store (always rebuilt: the DVC stage runs only when inputs changed).

    A datamodule with a torch-free store builder (seqpipe.registry.store_builder) is not instantiated: its
    builder gets the same arguments, so preprocessing a large corpus never loads torch or Lightning.
    """
    t = time.time()
    builder = registry.store_builder(cfg["data"]["class_path"])
    if builder is not None:
        store = builder(**(cfg["data"].get("init_args") or {}), rebuild=True)
        prepared_dir, meta = store.path, store.meta
    else:
        dm = make_datamodule(cfg, rebuild=True)
        dm.prepare_data()
        dm.rebuild = False
        dm.setup()
        prepared_dir, meta = dm.prepared_dir, dm.store.meta
    log.info(
        "prepared %s in %.1fs: %s records, fingerprint %s",
        prepared_dir,
        time.time() - t,
        meta["records"],
        meta["fingerprint"],
    )
    for key in ("skipped", "repairs"):
        if meta.get(key):
            log.info("%s: %s", key, json.dumps(meta[key])[:2000])
    return prepared_dir


def baseline_path(cfg: dict[str, Any]) -> Path:
    key = (cfg.get("evaluate") or {}).get("baseline_key", cfg["domain"])
    return REPORTS / "baselines" / f"{key}.json"


def baselines(cfg: dict[str, Any]) -> Path:
    """Fit the domain's baselines once per dataset/task; evaluate stages read the result."""
    configure_threads()
    dm = make_datamodule(cfg)
    t = time.time()
    result = registry.task(cfg["domain"]).baselines(dm, cfg)
    result["data_fingerprint"] = dm.meta["fingerprint"]
    timings = {"seconds": round(time.time() - t, 1), **_strip_timings(result)}
    path = baseline_path(cfg)  # results only: the same data and settings give the same bytes
    io.write_text(path, json.dumps(result, indent=2, default=float) + "\n")
    log.info("baselines -> %s (timings: %s)", path, json.dumps(timings))
    try:  # the file first: MLflow holds a copy, in a run of the dataset's own (seqpipe.runlog)
        from seqpipe import runlog_eval

        run_id = runlog_eval.log_baselines(cfg, path.stem, json.loads(path.read_text()), dm)
        log.info("baselines: MLflow run baselines-%s (%s)", path.stem, run_id)
    except Exception as e:  # noqa: BLE001 -- tracking is a copy; the file is the result
        log.warning("baselines are in %s, but logging them to MLflow failed: %r", path, e)
    return path


def _strip_timings(doc: Any, prefix: str = "") -> dict[str, Any]:
    """Remove wall-clock entries (``seconds``, ``*_seconds``) from a nested result, returning them flat."""
    found: dict[str, Any] = {}
    if isinstance(doc, dict):
        for k in list(doc):
            if k == "seconds" or k.endswith("_seconds"):
                found[f"{prefix}{k}"] = doc.pop(k)
            else:
                found.update(_strip_timings(doc[k], f"{prefix}{k}."))
    return found


def evaluate(cfg: dict[str, Any]) -> Path:
    """Test metrics for model and baselines -> reports/<name>/evaluation.json (every model-dependent number),
    metrics/<name>.json (its headline: primary metric, best baseline, margin) and reports/<name>/run.json (timings,
    run identity); logged to the training's MLflow run."""
    configure_threads()
    name = cfg["name"]
    run_file = MODELS / name / "run.json"
    if not run_file.exists():
        raise SeqpipeError(
            "no trained model to evaluate",
            where=MODELS / name,
            fix=f"train it first: seqpipe fit --config {cfg.get('config_path')} (or dvc repro)",
        )
    run = json.loads(run_file.read_text())
    record = training_record(name)
    run.update(json.loads(record.read_text()) if record.exists() else {"mlflow_run_id": None, "train_seconds": None})
    from seqpipe.models.loading import load_model

    model = load_model(MODELS / name / "best.ckpt")
    dm = make_datamodule(cfg)
    dm.prepare_data()
    dm.setup("test")
    if dm.meta["fingerprint"] != run["data_fingerprint"]:
        raise SeqpipeError(
            "the model was trained on other data than is prepared now",
            where=MODELS / name,
            fix="rerun `dvc repro` so the train stage sees the new data",
        )
    bpath = baseline_path(cfg)
    if bpath.exists() and json.loads(bpath.read_text()).get("data_fingerprint") == dm.meta["fingerprint"]:
        base = json.loads(bpath.read_text())
    else:
        base = registry.task(cfg["domain"]).baselines(dm, cfg)
    out_dir = REPORTS / name
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    result = registry.task(cfg["domain"]).evaluate(model, dm, cfg, base, out_dir)
    timings = {
        "train_seconds": run["train_seconds"],
        "evaluate_seconds": round(time.time() - t0, 1),
        **_pop_timings(result.model, "model"),
        **_pop_timings(result.extra, ""),
    }
    for b, m in result.baselines.items():
        timings.update(_pop_timings(m, f"baseline_{b}"))
    doc = tracking.write_metrics(
        out_dir / EVALUATION,
        experiment=name,
        domain=cfg["domain"],
        task=result.task,
        primary_metric=result.primary_metric,
        direction=result.direction,
        model=result.model,
        baselines=result.baselines,
        data_fingerprint=dm.meta["fingerprint"],
        extra={
            "global_steps": run["global_steps"],
            "truncated_by_time": bool(run.get("truncated_by_time", False)),
            **_gradient_summary(MODELS / name / "grad_final.csv"),
            **result.extra_section(),
        },
    )
    io.write_json(METRICS / f"{name}.json", tracking.headline(doc), indent=2, sort_keys=False)
    run_id = tracking.evaluation_run(run, MODELS / name / "best.ckpt", cfg)
    report = {
        "experiment": name,
        "mlflow_run_id": run_id,
        "training_run_id": run["mlflow_run_id"],
        "hardware": run.get("hardware"),
        **timings,
    }
    io.write_text(out_dir / "run.json", json.dumps(report, indent=2) + "\n")
    _log_evaluation(run_id, doc, result.tracked, result.artifacts, cfg, dm)
    log.info("%s", json.dumps({k: doc[k] for k in ("experiment", "primary_metric", "model", "baselines")}, indent=1))
    return METRICS / f"{name}.json"


def _pop_timings(values: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Move wall-clock numbers (``*_seconds``) out of a metrics dict: they depend on the machine."""
    keys = [k for k in values if k.endswith("_seconds") or k == "seconds"]
    return {(f"{prefix}_{k}" if prefix else k): values.pop(k) for k in keys}


def _gradient_summary(path: Path) -> dict[str, float]:
    """log10 ||dL_T/dh_1|| / ||dL_T/dh_T|| of the last sampled curve: very negative = vanishing."""
    if not path.exists():
        return {}
    rows = [line.split(",") for line in path.read_text().splitlines()[1:] if line]
    first, last = float(rows[0][1]), float(rows[-1][1])
    if first <= 0 or last <= 0:
        return {}
    return {"grad_h_log10_ratio_first_to_last": math.log10(first / last), "grad_T": len(rows)}


def _log_evaluation(
    run_id: str, doc: dict[str, Any], tracked: dict[str, float], artifacts: list[Path], cfg: dict[str, Any], dm: Any
) -> None:
    """Test metrics, settings, details and the registry alias (seqpipe.runlog), then the task's artifacts."""
    from mlflow.tracking import MlflowClient

    from seqpipe import runlog_eval

    runlog_eval.log_evaluation(run_id, doc, tracked, cfg, dm)
    client = MlflowClient(tracking.tracking_uri())
    for a in artifacts:
        client.log_artifact(run_id, str(a), artifact_path="evaluation")
