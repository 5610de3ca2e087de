"""What an MLflow run of seqpipe holds and what its entries are called (docs/tracking.md).

- Params: the whole resolved config, flattened with dotted keys (``data.init_args.seq_len``, ``trainer.max_steps``,
  ``fit.*``, ``evaluate.*``, ``seed``, ``profile``); the resolved YAML is the artifact ``config.yaml``, which
  ``seqpipe fit --config config.yaml`` trains again.
- Metrics: ``train/loss``, ``val/<metric>``, ``test/<metric>``, ``test/margin_vs_best_baseline``; the
  gradient-through-time curves under ``zz_grad_through_time/`` (after the others, in the UI's alphabetical order).
  Only the names sent to MLflow change: Lightning's keys (``train_loss``, ``val_loss``, the checkpoint monitor,
  learning_curve.csv) stay as they are, so training and the checkpoint it keeps are the same bits.
- Baselines: one run ``baselines-<dataset>`` a dataset (tag ``run_kind=baselines``), not copies in every
  model run. Registry: every fit registers its logged model under the experiment's name; evaluate points the alias
  ``best`` at the version best by the primary test metric.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from typing import Any

import yaml

from seqpipe import tracking

log = logging.getLogger(__name__)

GRAD_PREFIX = "zz_grad_through_time"  # sorts after system/, test/, train/ and val/ in the UI's lists and charts
RUN_KIND_TAG = "run_kind"  # "training" or "baselines"
BEST_ALIAS = "best"
PARAM_SECTIONS = ("data", "model", "trainer", "fit", "evaluate")
CONFIG_KEYS = ("name", "domain", "seed", "data", "model", "trainer", "fit", "evaluate", "pipeline")


# -- names ----------------------------------------------------------------------------------------
def metric_name(key: str) -> str:
    """A Lightning metric key as MLflow shows it: ``train_loss`` -> ``train/loss``, ``val_bpc`` -> ``val/bpc``,
    ``lr-AdamW`` -> ``train/lr-AdamW``, the gradient ratio under GRAD_PREFIX; other keys unchanged."""
    for split in ("train", "val", "test"):
        if key.startswith(f"{split}_"):
            return f"{split}/{key[len(split) + 1 :]}"
    if key == "grad_h_log10_ratio":
        return f"{GRAD_PREFIX}/log10_ratio_first_to_last"
    if key.startswith("lr-") or key == "epoch":
        return f"train/{key}"
    return key


def evaluation_metric_name(key: str) -> str:
    """An evaluation number as an MLflow test metric: ``test_bpc`` -> ``test/bpc``, ``mixture_test_bpc`` ->
    ``test/mixture_bpc``, ``mixture_weight_on_model`` -> ``test/mixture_weight_on_model``."""
    return "test/" + (key.replace("test_", "", 1) if "test_" in key else key)


def grad_curve_name(step: int) -> str:
    """The MLflow metric of one sampled gradient-through-time curve (its MLflow step is the time step t)."""
    return f"{GRAD_PREFIX}/at_step_{step:06d}"


def registered_name(cfg: dict[str, Any]) -> str | None:
    """The registered model a fit adds a version to: ``fit.register_model`` if a name, none if false, else the
    experiment's name."""
    choice = (cfg.get("fit") or {}).get("register_model", True)
    if choice is False or choice is None:
        return None
    return cfg["name"] if choice is True else str(choice)


def _no_tip(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("💡 Tip")


def quiet_known_noise() -> None:
    """Silence what every fit printed that says nothing about the run: Lightning's tip to install its cloud
    logger, its "Checkpoint directory ... exists and is not empty" (the work dir always holds run_state.json
    first, and a resumed run its checkpoints), its own use of a torch API deprecated in torch's _pytree, and the
    second copy of every seqpipe line that `import mlflow.pytorch` caused (its logging.basicConfig call; it also
    imports pytorch_lightning, which points Lightning's rank-zero messages at a logger without a handler)."""
    import warnings

    from lightning.fabric.utilities.rank_zero import rank_zero_module

    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_no_tip)
    root = logging.getLogger()
    handlers, level, lightning_log = list(root.handlers), root.level, rank_zero_module.log
    import mlflow.pytorch  # noqa: F401

    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)
    rank_zero_module.log = lightning_log


# -- params and the resolved config ---------------------------------------------------------------
def _flatten(value: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}", out)
    elif isinstance(value, (list, tuple, dict)):
        out[prefix] = json.dumps(value, default=str)
    else:
        out[prefix] = str(value)


def flat_params(cfg: dict[str, Any], sections: tuple[str, ...] = PARAM_SECTIONS) -> dict[str, str]:
    """The config as MLflow params with dotted keys (lists as JSON), plus seed, profile and the config file."""
    out: dict[str, str] = {}
    for section in sections:
        for k, v in (cfg.get(section) or {}).items():
            _flatten(v, f"{section}.{k}", out)
    out.update(seed=str(cfg.get("seed", 0)), profile=str(cfg.get("profile", "default")))
    out["config"] = str(cfg.get("config_path", ""))
    return out


def resolved_yaml(cfg: dict[str, Any]) -> str:
    """The config as trained (base files merged, profile and --set applied): `seqpipe fit --config` reads it back."""
    doc = {k: cfg[k] for k in CONFIG_KEYS if k in cfg}
    head = (
        f"# {cfg['name']}: {cfg.get('config_path')} resolved (profile {cfg.get('profile', 'default')}, base files "
        "merged, --set applied)\n# train it again: seqpipe fit --config config.yaml\n"
    )
    return head + yaml.safe_dump(doc, sort_keys=False)


def log_params(client: Any, run_id: str, params: dict[str, Any]) -> None:
    """Log the params the run lacks. MLflow keeps a param's first value: a resumed run or a later evaluate with
    other settings logs one line naming what changed (``config.yaml`` holds the latest)."""
    from mlflow.entities import Param

    have = client.get_run(run_id).data.params
    new = [Param(k, str(v)[:6000]) for k, v in params.items() if k not in have]
    changed = sorted(k for k, v in params.items() if k in have and have[k] != str(v)[:6000])
    for i in range(0, len(new), 100):  # MLflow takes at most 100 params a request
        client.log_batch(run_id, params=new[i : i + 100])
    if changed:
        log.info("MLflow run %s keeps its first values of %s (changed since)", run_id, ", ".join(changed))


def log_fit_config(client: Any, run_id: str, cfg: dict[str, Any], trainer: Any, model: Any, dm: Any) -> None:
    """A fit's params and config.yaml: the config, the constructor defaults it left out (the model's and the
    datamodule's saved hyperparameters) and what the trainer resolved on this machine (trainer.precision: auto,
    the logging interval)."""
    defaults: dict[str, str] = {}
    for section, obj in (("model", model), ("data", dm)):
        skip = ("spec", "data_info", "rebuild")  # what the stages inject (seqpipe.config.INJECTED)
        args = {k: v for k, v in dict(getattr(obj, "hparams", {})).items() if k not in skip}
        _flatten(args, f"{section}.init_args", defaults)
    trainer_values = {
        k: getattr(trainer, k)
        for k in ("precision", "log_every_n_steps", "gradient_clip_val", "gradient_clip_algorithm")
    }
    derived = {f"trainer.{k}": str(getattr(v, "value", v)) for k, v in trainer_values.items()}
    derived["data.spec"] = json.dumps(dm.spec.to_dict())
    log_params(client, run_id, {**defaults, **flat_params(cfg), **derived})
    client.log_text(run_id, resolved_yaml(cfg), "config.yaml")


# -- the fit's run ----------------------------------------------------------------------------------
def start_system_metrics(run_id: str, resume: bool) -> Any:
    """MLflow's system metrics (CPU, memory, disk, network; GPU with pynvml) for the run, every 10 s; None where
    psutil is missing. ``.finish()`` stops it."""
    try:
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # no start/stop lines a fit
        monitor = SystemMetricsMonitor(run_id, resume_logging=resume, tracking_uri=tracking.tracking_uri())
        monitor.start()
        return monitor
    except ImportError as e:
        log.info("no system metrics in MLflow (%s): install psutil", e)
        return None


def register(client: Any, model_info: Any, cfg: dict[str, Any]) -> str | None:
    """A new version of the experiment's registered model from this fit's logged model; returns it."""
    import mlflow

    name = registered_name(cfg)
    if name is None:
        return None
    mlflow.set_tracking_uri(tracking.tracking_uri())
    with contextlib.redirect_stderr(io.StringIO()):  # its two "Created version" lines: the caller logs one
        version = mlflow.register_model(f"models:/{model_info.model_id}", name)
    client.set_model_version_tag(name, version.version, "experiment", cfg["name"])
    return str(version.version)
