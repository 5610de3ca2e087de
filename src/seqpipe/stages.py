"""The pipeline stages that `dvc repro` runs: preprocess -> fit -> baselines -> evaluate -> summary.

Each stage reads an experiment config (seqpipe.config) and writes only its declared outputs,
atomically: models/<name>/ is trained in a temporary directory and swapped in when complete;
metrics files are written whole or not at all.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import torch

from seqpipe import runs, tracking
from seqpipe.config import import_class, instantiate
from seqpipe.errors import SeqpipeError
from seqpipe.evaluation import domain_module
from seqpipe.models.loading import load_model

log = logging.getLogger(__name__)

MODELS = Path("models")
METRICS = Path("metrics")
REPORTS = Path("reports")


def configure_threads() -> None:
    """One intra-op thread unless SEQPIPE_THREADS says otherwise.

    Recurrent steps are many small matrix products: a second thread gains little, passively waiting threads
    lose to the hand-offs, and spinning ones collapse once another process takes a core. Measured on 2 cores
    (benchmarks/threads.md, 256-unit LSTM): 2 spinning threads take 1.1x the time of 1 on a quiet machine and
    3.9x with a busy core; 2 passive ones 2.5x and 1.4x. Set SEQPIPE_THREADS=N for large models on many cores.
    """
    torch.set_num_threads(int(os.environ.get("SEQPIPE_THREADS") or 1))


def make_datamodule(cfg: dict[str, Any], **extra: Any) -> Any:
    return instantiate(cfg["data"], **extra)


def preprocess(cfg: dict[str, Any]) -> Path:
    """Raw source -> prepared store (always rebuilt: the DVC stage runs only when inputs changed)."""
    dm = make_datamodule(cfg, rebuild=True)
    t = time.time()
    dm.prepare_data()
    dm.rebuild = False
    dm.setup()
    meta = dm.store.meta
    log.info(
        "prepared %s in %.1fs: %s records, fingerprint %s",
        dm.prepared_dir,
        time.time() - t,
        meta["records"],
        meta["fingerprint"],
    )
    for key in ("skipped", "repairs"):
        if meta.get(key):
            log.info("%s: %s", key, json.dumps(meta[key])[:2000])
    return dm.prepared_dir


def _trainer_kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    kw = dict(cfg.get("trainer") or {})
    kw.setdefault("gradient_clip_val", 1.0)  # clipping by norm is on by default
    kw.setdefault("gradient_clip_algorithm", "norm")
    kw.setdefault("enable_progress_bar", True)
    kw.setdefault("log_every_n_steps", 10)
    kw.setdefault("accelerator", "auto")
    kw.setdefault("devices", "auto" if kw.get("accelerator") != "cpu" else 1)
    if kw.get("devices") not in (1, "1", "auto", None) or int(kw.get("num_nodes", 1)) > 1:
        kw.setdefault("strategy", "ddp")
    on_gpu = torch.cuda.is_available() and kw.get("accelerator") != "cpu"
    # same config + seed + machine = same bits: deterministic kernels (on GPU Lightning also sets
    # CUBLAS_WORKSPACE_CONFIG=:4096:8, which cuDNN RNNs need; "warn" as a few CUDA ops have no
    # deterministic version and would otherwise stop the run)
    kw.setdefault("deterministic", "warn" if on_gpu else True)
    if kw.get("precision") is None:
        kw["precision"] = "bf16-mixed" if on_gpu else "32-true"
    elif kw["precision"] == "auto":  # the measured rule: bf16 on CPU only for the cells it speeds up
        cell = ((cfg.get("model") or {}).get("init_args") or {}).get("cell", "lstm")
        fast = on_gpu or (cell in BF16_FASTER_ON_CPU and cpu_has_fast_bf16())
        kw["precision"] = "bf16-mixed" if fast else "32-true"
    elif kw["precision"] == "bf16-mixed" and not on_gpu and not cpu_has_fast_bf16():
        log.info("oneDNN has no bf16 on this CPU (needs AVX-512 or newer): training in 32-bit instead of bf16-mixed")
        kw["precision"] = "32-true"
    return kw


# Cells whose fused CPU kernel steps faster under bf16 autocast than in 32-bit (benchmarks/precision.md,
# `python benchmarks/bench_precision.py`: LSTM 0.62x, GRU 0.85x, vanilla RNN 1.11x the 32-bit step time).
BF16_FASTER_ON_CPU = frozenset({"lstm", "gru"})


def cpu_has_fast_bf16() -> bool:
    """Whether oneDNN supports bf16 here (AVX-512 or newer; native speed needs AVX512-BF16/AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def fit(cfg: dict[str, Any], resume: str | None = None) -> Path:
    """Train one experiment; log to MLflow; publish models/<name>/ (best.ckpt, last.ckpt, run.json).

    ``resume``: "auto" continues the interrupted run of this experiment (models/.<name>.tmp/last.ckpt,
    the same MLflow run), a path continues from that checkpoint; None starts fresh. See seqpipe.runs.
    """
    import lightning as L

    configure_threads()
    name = runs.check_name(cfg["name"], where=cfg.get("config_path"))
    if "class_path" not in (cfg.get("model") or {}):
        raise SeqpipeError("config has no `model` section", where=cfg.get("config_path"), fix="add model.class_path")
    seed = int(cfg.get("seed", 0))
    L.seed_everything(seed, workers=True, verbose=False)
    dm = make_datamodule(cfg)
    rank = runs.process_rank()
    if rank > 0:  # under torchrun/SLURM rank 0 builds the store, prepares the work dir and owns the outputs
        runs.wait_for_store(dm.prepared_dir)
    spec = dm.spec
    model = instantiate(cfg["model"], spec=spec.to_dict(), data_info=dm.data_info())
    data_tbptt, model_tbptt = bool(getattr(dm, "tbptt", False)), bool(model.hparams.get("tbptt", False))
    if data_tbptt != model_tbptt:  # stream-ordered windows without a carried state (or the reverse) train badly
        raise SeqpipeError(
            f"data.tbptt={data_tbptt} but model.tbptt={model_tbptt}",
            where=cfg.get("config_path"),
            fix="set data.init_args.tbptt and model.init_args.tbptt to the same value",
        )
    final_dir, work_dir = MODELS / name, MODELS / f".{name}.tmp"
    if rank > 0:
        ckpt = runs.resume_checkpoint(resume, work_dir)
        return _train(cfg, dm, model, seed, work_dir, final_dir, ckpt, {})
    with runs.experiment_lock(MODELS, name):
        ckpt = runs.resume_checkpoint(resume, work_dir)
        state = runs.prepare_work_dir(work_dir, ckpt)
        return _train(cfg, dm, model, seed, work_dir, final_dir, ckpt, state)


def _train(
    cfg: dict[str, Any],
    dm: Any,
    model: Any,
    seed: int,
    work_dir: Path,
    final_dir: Path,
    ckpt: Path | None,
    state: dict[str, Any],
) -> Path:
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import MLFlowLogger

    from seqpipe.callbacks import GradientThroughTime, LearningCurve

    name = cfg["name"]
    if runs.process_rank() == 0:
        tracking.ensure_experiment(cfg["domain"])
    logger = MLFlowLogger(
        experiment_name=tracking.experiment_name(cfg["domain"]),
        run_name=name,
        tracking_uri=tracking.tracking_uri(),
        tags=tracking.run_tags(cfg, "train", dm.meta["fingerprint"]),
        artifact_location=tracking.artifact_location(),
        run_id=state.get("mlflow_run_id"),  # a resumed run continues its MLflow run
    )
    if runs.process_rank() == 0:
        tracking.atomic_write_text(work_dir / "run_state.json", json.dumps({"mlflow_run_id": logger.run_id}) + "\n")
    fit_cfg = cfg.get("fit") or {}
    monitor = fit_cfg.get("monitor", "val_loss")
    callbacks = [
        ModelCheckpoint(
            dirpath=work_dir,
            filename="best",
            monitor=monitor,
            mode=fit_cfg.get("mode", "min"),
            save_last=True,
            save_top_k=1,
        ),
        LearningRateMonitor(logging_interval="step"),
        GradientThroughTime(every_n_steps=int(fit_cfg.get("grad_every_n_steps", 100)), out_dir=work_dir),
        LearningCurve(work_dir / "learning_curve.csv"),
        runs.RngState(),
    ]
    if fit_cfg.get("checkpoint_every_n_steps"):  # last.ckpt between validations: a crash loses at most N steps
        callbacks.append(
            ModelCheckpoint(
                dirpath=work_dir,
                save_last=True,
                save_top_k=0,
                every_n_train_steps=int(fit_cfg["checkpoint_every_n_steps"]),
            )
        )
    if fit_cfg.get("early_stopping_patience"):
        callbacks.append(
            EarlyStopping(
                monitor=monitor, mode=fit_cfg.get("mode", "min"), patience=int(fit_cfg["early_stopping_patience"])
            )
        )
    trainer = L.Trainer(
        logger=logger,
        callbacks=callbacks,
        default_root_dir=str(work_dir),
        plugins=[runs.AtomicCheckpointIO()],
        **_trainer_kwargs(cfg),
    )
    logger.log_hyperparams(
        {
            "config": cfg.get("config_path"),
            "seed_everything": seed,
            "data": json.dumps(cfg["data"], default=str),
            "spec": json.dumps(dm.spec.to_dict()),
        }
    )
    if ckpt is not None:
        log.info("%s: resuming from %s (MLflow run %s)", name, ckpt, logger.run_id)
    t0 = time.time()
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt)
    train_seconds = time.time() - t0  # this process's share, when resumed
    truncated = stopped_by_time(trainer)
    if truncated:
        log.warning(
            "%s: trainer.max_time stopped training at step %d: the result depends on this machine's speed "
            "(truncated_by_time in its metrics)",
            name,
            trainer.global_step,
        )
    if not trainer.is_global_zero:
        return final_dir
    best = work_dir / "best.ckpt"
    if not best.exists():
        raise SeqpipeError(
            "training produced no checkpoint (no validation run?)",
            where=work_dir,
            fix="make sure trainer settings allow at least one validation pass",
        )
    run = {  # a function of the config and seed: the same bits on a rerun, so DVC sees an unchanged model
        "experiment": name,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "best_ckpt": str(final_dir / "best.ckpt"),
        "best_score": float(callbacks[0].best_model_score) if callbacks[0].best_model_score is not None else None,
        "global_steps": trainer.global_step,
        "epochs": trainer.current_epoch,
        "truncated_by_time": truncated,
        "data_fingerprint": dm.meta["fingerprint"],
    }
    training = {  # this machine and this run: beside the model folder, not inside it
        "experiment": name,
        "mlflow_run_id": logger.run_id,
        "resumed_from": str(ckpt) if ckpt is not None else None,
        "train_seconds": round(train_seconds, 1),
        "hardware": tracking.hardware(),
    }
    tracking.atomic_write_text(work_dir / "run.json", json.dumps(run, indent=2) + "\n")
    (work_dir / "run_state.json").unlink(missing_ok=True)
    training_record(name).unlink(missing_ok=True)  # never left describing the model this publish replaces
    runs.publish(work_dir, final_dir)  # the model first: a tracking failure after this loses nothing
    tracking.atomic_write_text(training_record(name), json.dumps(training, indent=2) + "\n")
    log.info(
        "%s: %d steps in %.0fs, best %s, published %s",
        name,
        trainer.global_step,
        train_seconds,
        run["best_score"],
        final_dir,
    )
    try:
        client = logger.experiment
        client.log_metric(logger.run_id, "train_seconds", train_seconds)
        client.log_artifact(logger.run_id, str(final_dir / "best.ckpt"), artifact_path="checkpoints")
        best_model = import_class(run["model_class"]).load_from_checkpoint(final_dir / "best.ckpt", map_location="cpu")
        _log_pytorch_model(logger.run_id, best_model, dm)
        tracking.log_dataset(client, logger.run_id, dm.meta, dm.prepared_dir)
        log.info("%s: MLflow run %s (`make ui`)", name, tracking.runs_url(logger.experiment_id, logger.run_id))
        if fit_cfg.get("register_model"):
            version = tracking.register_model(logger.run_id, str(fit_cfg["register_model"]))
            log.info("%s: registered as MLflow model %s version %s", name, fit_cfg["register_model"], version)
    except Exception as e:  # noqa: BLE001 -- tracking is a copy; the published model is the result
        log.warning("%s is published in %s, but logging it to MLflow failed: %r", name, final_dir, e)
    return final_dir


def stopped_by_time(trainer: Any) -> bool:
    """Whether trainer.max_time (Lightning's Timer), not the step/epoch budget, ended training."""
    from lightning.pytorch.callbacks import Timer

    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    return bool(timer is not None and timer.time_remaining("train") is not None and timer.time_remaining("train") <= 0)


def _log_pytorch_model(run_id: str, model: torch.nn.Module, dm: Any) -> None:
    """mlflow.pytorch model with an input example, so `mlflow.pytorch.load_model(runs:/...)` predicts."""
    import mlflow

    from seqpipe.models.core import OutputOnly

    batch = next(iter(dm.val_dataloader()))
    example = batch["inputs"][:2].numpy()
    wrapped = OutputOnly(model.eval())
    mlflow.set_tracking_uri(tracking.tracking_uri())
    import lightning
    import numpy

    import seqpipe

    # explicit requirements: MLflow's inference re-imports the model in a subprocess (~20 s a run)
    reqs = [
        f"torch=={torch.__version__.split('+')[0]}",
        f"lightning=={lightning.__version__}",
        f"numpy=={numpy.__version__}",
    ]
    with mlflow.start_run(run_id=run_id):
        mlflow.pytorch.log_model(
            wrapped,
            name="model",
            input_example=example,
            serialization_format="pickle",
            pip_requirements=reqs,
            code_paths=[str(Path(seqpipe.__file__).parent)],
        )


def baseline_path(cfg: dict[str, Any]) -> Path:
    key = (cfg.get("evaluate") or {}).get("baseline_key", cfg["domain"])
    return REPORTS / "baselines" / f"{key}.json"


def baselines(cfg: dict[str, Any]) -> Path:
    """Fit the domain's baselines once per dataset/task; evaluate stages read the result."""
    configure_threads()
    dm = make_datamodule(cfg)
    t = time.time()
    result = domain_module(cfg["domain"]).baselines(dm, cfg)
    result["data_fingerprint"] = dm.meta["fingerprint"]
    timings = {"seconds": round(time.time() - t, 1), **_strip_timings(result)}
    path = baseline_path(cfg)  # results only: the same data and settings give the same bytes
    tracking.atomic_write_text(path, json.dumps(result, indent=2, default=float) + "\n")
    log.info("baselines -> %s (timings: %s)", path, json.dumps(timings))
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


def training_record(name: str) -> Path:
    """models/<name>.training.json: the MLflow run id, train seconds, hardware and resume point of the last fit
    (kept out of models/<name>/ so that folder is the same bits on every rerun)."""
    return MODELS / f"{name}.training.json"


def evaluate(cfg: dict[str, Any]) -> Path:
    """Test metrics for model and baselines -> metrics/<name>.json (model-dependent numbers only) and
    reports/<name>/run.json (timings, run identity); both logged to the training's MLflow run."""
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
        base = domain_module(cfg["domain"]).baselines(dm, cfg)
    out_dir = REPORTS / name
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    result = domain_module(cfg["domain"]).evaluate(model, dm, cfg, base, out_dir)
    timings = {
        "train_seconds": run["train_seconds"],
        "evaluate_seconds": round(time.time() - t0, 1),
        **_pop_timings(result.model, "model"),
        **_pop_timings(result.extra, ""),
    }
    for b, m in result.baselines.items():
        timings.update(_pop_timings(m, f"baseline_{b}"))
    doc = tracking.write_metrics(
        METRICS / f"{name}.json",
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
            **result.extra,
        },
    )
    run_id = tracking.evaluation_run(run, MODELS / name / "best.ckpt", cfg)
    report = {
        "experiment": name,
        "mlflow_run_id": run_id,
        "training_run_id": run["mlflow_run_id"],
        "hardware": run.get("hardware"),
        **timings,
    }
    tracking.atomic_write_text(out_dir / "run.json", json.dumps(report, indent=2) + "\n")
    _log_evaluation(run_id, doc, result.artifacts)
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


def _log_evaluation(run_id: str, doc: dict[str, Any], artifacts: list[Path]) -> None:
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking.tracking_uri())
    now = int(time.time() * 1000)
    values = dict(doc["model"])
    values.update({f"baseline_{b}_{k}": v for b, m in doc["baselines"].items() for k, v in m.items()})
    metrics = [Metric(k, float(v), now, 0) for k, v in values.items() if math.isfinite(float(v))]
    for i in range(0, len(metrics), 900):  # one request a batch, not one a metric
        client.log_batch(run_id, metrics=metrics[i : i + 900])
    client.log_batch(run_id, tags=[RunTag("dvc_stage_evaluate", "evaluate")])
    for a in artifacts:
        client.log_artifact(run_id, str(a), artifact_path="evaluation")


def _shifted_row(d: dict[str, Any], metric: str, cut: str) -> str:
    """A summary row for a shifted-test metric (same direction as the primary one), against the baseline
    that scores best on that metric -- not the clean test's best baseline."""
    mv = d["model"][metric]
    scored = {b: m[metric] for b, m in d["baselines"].items() if metric in m}
    lower = d["direction"] == "lower"
    if scored:
        bb = (min if lower else max)(scored, key=scored.get)
        bv = scored[bb]
    else:
        bb, bv = "-", float("nan")
    margin = (bv - mv) if lower else (mv - bv)
    return (
        f"| {d['experiment']} (shifted){cut} | {d['domain']} | {metric} ({d['direction']} is better) | {mv:.4f} | "
        f"{bb} | {bv:.4f} | {margin:+.4f} | {'yes' if margin > 0 else 'no'} |"
    )


def summary(metrics_dir: Path = METRICS, out: Path | None = None, files: list[Path] | None = None) -> str:
    """One markdown row an experiment: primary metric, best baseline, the margin.

    ``files``: exactly these metrics files (the DVC stage lists its dependencies, so a stray file in
    metrics/ cannot change its output unseen); default: every metrics/*.json.
    """
    rows = [
        "| experiment | domain | metric | model | best baseline | baseline | margin | model better |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in sorted(files if files is not None else metrics_dir.glob("*.json")):
        d = json.loads(f.read_text())
        if "primary_metric" not in d:
            continue
        pm, mv = d["primary_metric"], d["model"][d["primary_metric"]]
        bb = d.get("best_baseline")
        bv = d["baselines"][bb][pm] if bb else float("nan")
        margin = (bv - mv) if d["direction"] == "lower" else (mv - bv)
        better = "yes" if margin > 0 else "no"
        cut = " (cut short by max_time)" if d.get("truncated_by_time") else ""
        rows.append(
            f"| {d['experiment']}{cut} | {d['domain']} | {pm} ({d['direction']} is better) | {mv:.4f} | "
            f"{bb} | {bv:.4f} | {margin:+.4f} | {better} |"
        )
        for sm in d.get("shifted_metrics") or []:  # e.g. audio's channel-shifted test: its own best baseline
            if sm in d["model"]:
                rows.append(_shifted_row(d, sm, cut))
        for variant, values in (d.get("variants") or {}).items():  # e.g. the model + n-gram mixture
            if pm in values:
                vm = (bv - values[pm]) if d["direction"] == "lower" else (values[pm] - bv)
                rows.append(
                    f"| {variant}{cut} | {d['domain']} | {pm} ({d['direction']} is better) | {values[pm]:.4f} | "
                    f"{bb} | {bv:.4f} | {vm:+.4f} | {'yes' if vm > 0 else 'no'} |"
                )
    text = "\n".join(rows) + "\n"
    tracking.atomic_write_text(out or metrics_dir / "summary.md", text)
    return text
