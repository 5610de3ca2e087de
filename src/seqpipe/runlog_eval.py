"""What evaluate and the baselines stage add to MLflow (seqpipe.runlog has the names; docs/tracking.md).

Test metrics go to the training run as ``test/<metric>`` linked to its logged model and the dataset, with
``test/margin_vs_best_baseline``; the details (per-order, per-weight dicts) as the artifact
``evaluation/metrics.json``; the registry alias ``best`` follows the best version. Baselines get a run of their
own a dataset, ``baselines-<key>``.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from seqpipe import tracking
from seqpipe.runlog import BEST_ALIAS, RUN_KIND_TAG, evaluation_metric_name, flat_params, log_params, registered_name

log = logging.getLogger(__name__)


def logged_model_id(client: Any, run_id: str, name: str) -> str | None:
    """The newest model the run logged under the experiment's name (None: the run logged none, or elsewhere)."""
    exp = client.get_run(run_id).info.experiment_id
    found = client.search_logged_models([exp], filter_string=f"source_run_id = '{run_id}' AND name = '{name}'")
    return max(found, key=lambda m: m.creation_timestamp).model_id if found else None


def margin(doc: dict[str, Any]) -> float | None:
    """How far the model's primary test metric beats the best baseline's (positive: better; None: no baseline)."""
    best, pm = doc.get("best_baseline"), doc["primary_metric"]
    if best is None:
        return None
    diff = doc["model"][pm] - doc["baselines"][best][pm]
    return -diff if doc["direction"] == "lower" else diff


def log_evaluation(run_id: str, doc: dict[str, Any], tracked: dict[str, float], cfg: dict[str, Any], dm: Any) -> None:
    """Test metrics (``test/*``, linked to the logged model and the dataset), the settings evaluate used as params,
    the whole metrics document as ``evaluation/metrics.json``, and the registry's ``best`` alias."""
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking.tracking_uri())
    model_id = logged_model_id(client, run_id, cfg["name"])
    data_name, digest = tracking.dataset_ref(dm.meta, dm.prepared_dir)
    values = {evaluation_metric_name(k): v for k, v in {**doc["model"], **tracked}.items()}
    if (m := margin(doc)) is not None:
        values["test/margin_vs_best_baseline"] = m
    now = int(time.time() * 1000)
    link = {"model_id": model_id, "dataset_name": data_name, "dataset_digest": digest}
    metrics = [Metric(k, float(v), now, 0, **link) for k, v in values.items() if math.isfinite(float(v))]
    for i in range(0, len(metrics), 900):  # one request a batch, not one a metric
        client.log_batch(run_id, metrics=metrics[i : i + 900])
    client.log_batch(run_id, tags=[RunTag("dvc_stage_evaluate", "evaluate")])
    used = {
        **flat_params(cfg, ("evaluate",)),
        "evaluate.primary_metric": doc["primary_metric"],
        "evaluate.direction": doc["direction"],
        "evaluate.best_baseline": doc.get("best_baseline"),
    }
    log_params(client, run_id, {k: v for k, v in used.items() if k.startswith("evaluate.")})
    client.log_dict(run_id, doc, "evaluation/metrics.json")  # the per-order and per-weight details, as a file
    if (name := registered_name(cfg)) is not None:
        set_best_alias(client, name, evaluation_metric_name(doc["primary_metric"]), doc["direction"])


def set_best_alias(client: Any, name: str, metric: str, direction: str) -> str | None:
    """Point ``best`` at the registered version whose run scored best on ``metric``; returns that version."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return None
    scored = {}
    for v in versions:
        value = client.get_run(v.run_id).data.metrics.get(metric)
        if value is not None and math.isfinite(value):
            scored[v.version] = value
    if not scored:
        return None
    best = (min if direction == "lower" else max)(scored, key=lambda v: (scored[v], -int(v)))
    client.set_registered_model_alias(name, BEST_ALIAS, best)
    log.info("MLflow model %s@%s -> version %s (%s %.6g)", name, BEST_ALIAS, best, metric, scored[best])
    return str(best)


def log_baselines(cfg: dict[str, Any], key: str, result: dict[str, Any], dm: Any) -> str:
    """One run ``baselines-<key>`` for the dataset's baselines: ``<baseline>/test/<metric>`` metrics linked to the
    dataset, the settings as params, the whole result as the artifact ``baselines.json``; returns its id."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking.tracking_uri())
    exp_id = tracking.ensure_experiment(cfg["domain"])
    fp = dm.meta["fingerprint"]
    tags = {**tracking.run_tags(cfg, "baselines", fp), RUN_KIND_TAG: "baselines", "baseline_key": key}
    run = client.create_run(exp_id, tags=tags, run_name=f"baselines-{key}")
    run_id = run.info.run_id
    tracking.log_dataset(client, run_id, dm.meta, dm.prepared_dir)
    data_name, digest = tracking.dataset_ref(dm.meta, dm.prepared_dir)
    now = int(time.time() * 1000)
    metrics = [
        Metric(f"{b}/{evaluation_metric_name(k)}", float(v), now, 0, dataset_name=data_name, dataset_digest=digest)
        for b, m in result.get("baselines", {}).items()
        for k, v in m.items()
        if isinstance(v, (int, float)) and math.isfinite(float(v))
    ]
    for i in range(0, len(metrics), 900):
        client.log_batch(run_id, metrics=metrics[i : i + 900])
    log_params(client, run_id, flat_params(cfg, ("data", "evaluate")))
    client.log_dict(run_id, result, "baselines.json")
    client.set_terminated(run_id)
    return run_id
