"""The fit stage: train one experiment with Lightning, log it to MLflow, publish models/<name>/.

Kept apart from seqpipe.stages so the preprocess, baselines and summary stages never import Lightning or
MLflow for it; ``stages.fit`` calls in here.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch

from seqpipe import io, precision, runlog, runs, tracking, tracking_guard
from seqpipe.config import instantiate
from seqpipe.errors import SeqpipeError
from seqpipe.models.loading import CHECKSUMS, class_path_of, file_sha256, load_model
from seqpipe.project import MODELS, configure_threads, make_datamodule, training_record
from seqpipe.trainer import build_trainer, stopped_by_time

log = logging.getLogger(__name__)


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
        if ckpt is not None and not _resumable(cfg, ckpt, work_dir, model):  # rank 0 decides the same way
            return final_dir
        return _train(cfg, dm, model, seed, work_dir, final_dir, ckpt, {})
    with runs.experiment_lock(MODELS, name):
        ckpt = runs.resume_checkpoint(resume, work_dir)
        if ckpt is not None and not _resumable(cfg, ckpt, work_dir, model):
            log.info("%s: nothing to resume, already trained (%s holds the whole budget)", name, ckpt)
            return final_dir
        state = runs.prepare_work_dir(work_dir, ckpt)
        return _train(cfg, dm, model, seed, work_dir, final_dir, ckpt, state)


def _resumable(cfg: dict[str, Any], ckpt: Path, work_dir: Path, model: Any) -> bool:
    """Refuses changed hyperparameters; False for a finished checkpoint outside the work dir (nothing to do)."""
    state_file = work_dir / "run_state.json"
    inside = ckpt.resolve().parent == work_dir.resolve()
    state = json.loads(state_file.read_text()) if inside and state_file.exists() else {}
    return runs.check_resume(cfg, ckpt, state, dict(model.hparams)) or inside


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
    name = cfg["name"]
    runlog.quiet_known_noise()
    logger = tracking_guard.open_run(cfg, dm.meta["fingerprint"], state, ckpt)
    if runs.process_rank() == 0:
        run_state = {"mlflow_run_id": logger.run_id, "config": runs.resumed_sections(cfg)}
        io.write_text(work_dir / "run_state.json", json.dumps(run_state) + "\n")
    trainer = build_trainer(cfg, work_dir, logger, model)
    best_checkpoint = trainer.checkpoint_callback
    monitor = None
    if runs.process_rank() == 0:
        guard = logger.guard  # tracking is a copy: a failure here is one warning, the fit goes on
        guard.call(
            "logging the config", runlog.log_fit_config, logger.experiment, logger.run_id, cfg, trainer, model, dm
        )
        resumed = bool(state.get("mlflow_run_id"))
        monitor = guard.call("starting system metrics", runlog.start_system_metrics, logger.run_id, resume=resumed)
    if ckpt is not None:
        log.info("%s: resuming from %s (MLflow run %s)", name, ckpt, logger.run_id)
    t0 = time.time()
    try:
        trainer.fit(model, datamodule=dm, ckpt_path=ckpt)
    finally:
        if monitor is not None:
            monitor.finish()
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
    best_score = float(best_checkpoint.best_model_score) if best_checkpoint.best_model_score is not None else None
    if best_score is not None and not math.isfinite(best_score):
        raise SeqpipeError(
            f"the best validation {best_checkpoint.monitor} is {best_score}: the model diverged or its data holds "
            "non-finite values, and it is not published",
            where=work_dir,
            fix="check the data (seqpipe verify) and lower model.init_args.lr; the previous model stays in place",
        )
    run = {  # a function of the config and seed: the same bits on a rerun, so DVC sees an unchanged model
        "experiment": name,
        "model_class": class_path_of(model),
        "best_ckpt": str(final_dir / "best.ckpt"),
        "best_score": best_score,
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
        "precision": trainer.precision,
        "hardware": tracking.hardware(),
    }
    if (cfg.get("trainer") or {}).get("precision") == "auto" and precision.last_choice:  # the choice and its ratio
        training["precision_auto"] = precision.last_choice
    io.write_text(work_dir / "run.json", json.dumps(run, indent=2) + "\n")
    io.write_json(work_dir / CHECKSUMS, {"best.ckpt": file_sha256(best)}, indent=2)  # checked wherever it is loaded
    (work_dir / "run_state.json").unlink(missing_ok=True)
    training_record(name).unlink(missing_ok=True)  # never left describing the model this publish replaces
    runs.publish(work_dir, final_dir)  # the model first: a tracking failure after this loses nothing
    io.write_text(training_record(name), json.dumps(training, indent=2) + "\n")
    log.info(
        "%s: %d steps in %.0fs, best %s, published %s",
        name,
        trainer.global_step,
        train_seconds,
        run["best_score"],
        final_dir,
    )
    if logger.guard.broken:  # already warned, and the run marked FAILED where the store answered
        return final_dir
    try:
        client = logger.experiment
        client.log_metric(logger.run_id, "train/seconds", train_seconds)
        client.log_artifact(logger.run_id, str(final_dir / "best.ckpt"), artifact_path="checkpoints")
        best_model = load_model(final_dir / "best.ckpt")
        model_info = _log_pytorch_model(logger.run_id, best_model, dm, final_dir, name=name)  # named after the run
        tracking.log_dataset(client, logger.run_id, dm.meta, dm.prepared_dir)
        version = runlog.register(client, model_info, cfg)
        if version is not None:
            log.info("%s: registered as MLflow model %s version %s", name, runlog.registered_name(cfg), version)
        log.info("%s: MLflow run %s (`make ui`)", name, tracking.runs_url(logger.experiment_id, logger.run_id))
    except Exception as e:  # noqa: BLE001 -- tracking is a copy; the published model is the result
        log.warning("%s is published in %s, but logging it to MLflow failed: %r", name, final_dir, e)
        logger.guard.reason = f"logging the published model: {e!r}"
        logger.guard.mark_failed(logger.experiment, logger.run_id)
    return final_dir


def _log_pytorch_model(run_id: str, model: torch.nn.Module, dm: Any, model_dir: Path, name: str = "model") -> Any:
    """The run's MLflow model, ``runs:/<id>/<name>`` (named after the experiment): a pyfunc taking domain inputs
    where the domain has a serve hook (seqpipe.serving: `mlflow models serve`, `mlflow.pyfunc.load_model`), else an
    mlflow.pytorch model of the network with a tensor input example (`mlflow.pytorch.load_model`). Its ModelInfo."""
    import mlflow

    from seqpipe import serving
    from seqpipe.models.core import OutputOnly

    mlflow.set_tracking_uri(tracking.tracking_uri())
    import lightning
    import numpy
    import pandas

    import seqpipe

    # explicit requirements: MLflow's inference re-imports the model in a subprocess (~20 s a run)
    reqs = [
        f"torch=={torch.__version__.split('+')[0]}",
        f"lightning=={lightning.__version__}",
        f"numpy=={numpy.__version__}",
    ]
    code_paths = [str(Path(seqpipe.__file__).parent)]
    with mlflow.start_run(run_id=run_id):
        served = [*reqs, f"pandas=={pandas.__version__}", f"mlflow=={mlflow.__version__}"]
        info = serving.log_model(model, model_dir, served, code_paths, name=name)
        if info is not None:
            return info
        batch = next(iter(dm.val_dataloader()))
        return mlflow.pytorch.log_model(
            OutputOnly(model.eval()),
            name=name,
            input_example=batch["inputs"][:2].numpy(),
            serialization_format="pickle",
            pip_requirements=reqs,
            code_paths=code_paths,
        )
