"""Publish first, track second: MLflow is a copy of a fit, never a reason to lose it.

Every MLflow call on the training path goes through a ``TrackingGuard``: the first failure (a moved project, a
full disk under the store, an MLflow outage) is one warning, later calls are skipped, training goes on and the
model is published; at the end the run is marked FAILED with the reason where the store answers again. Runs are
tagged with the fitting process's host and pid, so a SIGKILLed run (still RUNNING, its pid gone) is marked KILLED
by the next fit of the domain.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_only

log = logging.getLogger(__name__)

FAILURE_TAG = "tracking_failure"
PID_TAG, HOST_TAG = "fit_pid", "fit_host"


class TrackingGuard:
    """Runs tracking calls; the first failure is remembered and warned about once, later calls are skipped."""

    def __init__(self) -> None:
        self.reason: str | None = None

    @property
    def broken(self) -> bool:
        return self.reason is not None

    def fail(self, what: str, error: BaseException) -> None:
        if self.reason is None:
            self.reason = f"{what}: {type(error).__name__}: {error}"
            log.warning(
                "MLflow tracking failed (%s); training goes on untracked and the model is published", self.reason
            )

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.reason is not None:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 -- tracking is a copy; the fit is the result
            self.fail(what, e)
            return None

    def mark_failed(self, client: Any, run_id: str | None) -> None:
        """Tag the run with the reason and end it FAILED (where the store answers; else a warning)."""
        if self.reason is None or run_id is None:
            return
        try:
            client.set_tag(run_id, FAILURE_TAG, self.reason[:4000])
            client.set_terminated(run_id, "FAILED")
        except Exception as e:  # noqa: BLE001
            log.warning("could not mark MLflow run %s FAILED (%s): the store is still unreachable", run_id, e)


def guard_of(logger: Any) -> TrackingGuard:
    """The logger's guard (a plain logger gets one of its own, so callbacks never raise on tracking)."""
    guard = getattr(logger, "guard", None)
    if guard is None:
        guard = TrackingGuard()
        try:
            logger.guard = guard
        except AttributeError:  # pragma: no cover
            pass
    return guard


class GuardedMLFlowLogger(MLFlowLogger):
    """Lightning's MLFlowLogger whose writes go through a TrackingGuard (a broken run ends FAILED, not FINISHED) and
    whose metrics go to MLflow under seqpipe.runlog's names; everything Lightning sees (callback_metrics, the
    checkpoint monitor) keeps its own keys."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = TrackingGuard()

    def log_hyperparams(self, params: Any) -> None:
        """Lightning's undotted copy of the model's and datamodule's arguments: runlog.log_fit_config logs them."""

    @rank_zero_only
    def log_metrics(self, metrics: Any, step: int | None = None) -> None:
        from seqpipe.runlog import metric_name

        named = {metric_name(k): v for k, v in metrics.items()}
        self.guard.call("logging metrics", super().log_metrics, named, step)

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        self.guard.call("logging checkpoints", super().after_save_checkpoint, checkpoint_callback)

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        if self.guard.broken:
            if self._initialized:
                self.guard.mark_failed(self.experiment, self.run_id)
            return
        self.guard.call("ending the run", super().finalize, status)
        if self.guard.broken and self._initialized:
            self.guard.mark_failed(self.experiment, self.run_id)


def run_exists(client: Any, run_id: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id).info.lifecycle_stage != "deleted"  # a deleted run is as good as lost
    except MlflowException:
        return False


def claim_run(client: Any, run_id: str) -> None:
    """Tag the run with this process, so a later fit can tell a SIGKILLed run from a running one."""
    client.set_tag(run_id, HOST_TAG, socket.gethostname())
    client.set_tag(run_id, PID_TAG, str(os.getpid()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_killed(client: Any, experiment_id: str) -> list[str]:
    """Mark this host's RUNNING runs whose fitting process is gone (SIGKILL, OOM killer) as KILLED."""
    host = socket.gethostname()
    runs = client.search_runs(
        [experiment_id], filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'"
    )
    killed = []
    for run in runs:
        pid = run.data.tags.get(PID_TAG, "")
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            client.set_terminated(run.info.run_id, "KILLED")
            killed.append(run.info.run_id)
            log.warning(
                "MLflow run %s was left RUNNING by process %s, which is gone: marked KILLED", run.info.run_id, pid
            )
    return killed


def open_run(cfg: dict[str, Any], fingerprint: str, state: dict[str, Any], ckpt: Any) -> GuardedMLFlowLogger:
    """The run's guarded MLflow logger: the recorded run when resuming and the store still has it, else a new run
    tagged with the checkpoint and the lost run's id; this host's SIGKILLed runs are marked KILLED first."""
    import mlflow

    from seqpipe import runs, tracking
    from seqpipe.runlog import RUN_KIND_TAG

    tags = {**tracking.run_tags(cfg, "train", fingerprint), RUN_KIND_TAG: "training"}
    run_id = state.get("mlflow_run_id")
    if runs.process_rank() == 0:
        exp_id = tracking.ensure_experiment(cfg["domain"])
        client = mlflow.MlflowClient(tracking.tracking_uri())
        try:  # housekeeping: never a reason not to train
            reap_killed(client, exp_id)
        except Exception as e:  # noqa: BLE001
            log.warning("could not check the store for runs left RUNNING by killed fits: %s", e)
        if run_id and not run_exists(client, run_id):
            log.warning(
                "%s: the resumed run's MLflow run %s is not in the store %s: logging to a new run",
                cfg["name"],
                run_id,
                tracking.tracking_uri(),
            )
            tags.update({"resumed_checkpoint": str(ckpt), "lost_run_id": run_id})
            run_id = None
    logger = GuardedMLFlowLogger(
        experiment_name=tracking.experiment_name(cfg["domain"]),
        run_name=cfg["name"],
        tracking_uri=tracking.tracking_uri(),
        tags=tags,
        artifact_location=tracking.artifact_location(),
        run_id=run_id,  # a resumed run continues its MLflow run
    )
    if runs.process_rank() == 0:
        logger.guard.call("tagging the run", claim_run, logger.experiment, logger.run_id)
    return logger
