"""Checking a resolved config: unknown keys, the class_path rule, and values against the constructors' types.

- Every key must be one seqpipe or the named constructor reads; an unknown one is a one-line error naming
  the closest valid key.
- ``data.class_path`` must name a LightningDataModule and ``model.class_path`` a LightningModule, checked
  before anything is called: a config imports classes, it does not run arbitrary callables (``os.system``).
- ``data``/``model`` init_args are validated by jsonargparse (the parser under LightningCLI) against the
  constructor's type hints: Literal, Union, Optional, lists, dicts, nested types (seqpipe.config_types).
  A datamodule with a torch-free store builder is checked against the builder's signature, importing no torch.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from typing import Any

from seqpipe.config_types import coerce, normalize_duration, type_hints, validate
from seqpipe.errors import SeqpipeError, missing_extra
from seqpipe.registry import store_builder

TOP_KEYS = ("base", "name", "domain", "seed", "data", "model", "trainer", "fit", "evaluate", "pipeline", "profiles")
FIT_KEYS = {
    "monitor": "metric that picks best.ckpt and drives early stopping (default val_loss)",
    "mode": "min or max for monitor",
    "grad_every_n_steps": "period of the gradient-through-time replay, in optimizer steps",
    "early_stopping_patience": "validations without improvement before stopping (unset: no early stopping)",
    "checkpoint_every_n_steps": "also write last.ckpt every N optimizer steps (resume loses at most N steps)",
    "ema_decay": "keep an exponential moving average of the weights (e.g. 0.999), validated, checkpointed and "
    "published in their place (unset: none)",
    "ema_every_n_steps": "update the average every N optimizer steps, at decay**N a time (default 1)",
    "max_nonfinite_steps": "stop the fit (one-line error, nothing published) after N consecutive NaN/inf losses (20)",
    "register_model": "the registered MLflow model a fit adds a version to (default: the experiment's name; false: "
    "none); evaluate points its alias `best` at the version best on the primary test metric",
}
PIPELINE_KEYS = {
    "stages": "false: `seqpipe dvc-yaml` makes no stages of this file (GPU or long configs)",
    "prepare": "false: the prepared store is another dataset's (shared, e.g. fill_blank reads the text store)",
    "raw": "a stage that writes the raw data: {module, args, out}; base.yaml only",
    "evaluate": "false: no evaluate stage (another experiment's evaluation scores this model)",
    "needs": "names of other experiments whose models this experiment's evaluation reads",
    "baselines": "false: no baselines stage (evaluation reads another dataset's, see evaluate.baseline_key)",
    "gradient_plot": "true: a DVC plot of the experiments' gradient-through-time curves",
}
SECTION_KEYS = ("class_path", "init_args")
INJECTED = {"data": ("rebuild",), "model": ("spec", "data_info")}  # set by the stages, not by configs
SECTION_BASES = {"data": "LightningDataModule", "model": "LightningModule"}  # what a class_path may name
_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


# -- classes ------------------------------------------------------------------------------------
def import_class(class_path: str) -> Any:
    """The object ``class_path`` names (importing its module: configs are code to that extent)."""
    if not isinstance(class_path, str) or not _DOTTED.fullmatch(class_path):
        raise SeqpipeError(f"class_path must be a dotted name, got {class_path!r}", fix="write package.module.Class")
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as e:
        raise (
            missing_extra(e) or SeqpipeError(f"cannot import '{class_path}': {e}", fix="check class_path in the config")
        ) from e
    except AttributeError as e:
        raise SeqpipeError(f"cannot import '{class_path}': {e}", fix="check class_path in the config") from e


def lightning_class(class_path: Any, section: str | None, where: Any = None) -> type:
    """The class at ``class_path`` if it subclasses the Lightning base ``section`` may name (data: a
    LightningDataModule, model: a LightningModule; None: either), else a one-line error. Nothing is called."""
    names = [SECTION_BASES[section]] if section else list(SECTION_BASES.values())
    key = f"{section}.class_path" if section else "class_path"
    cls = import_class(class_path)
    if isinstance(cls, type):  # only a class can subclass one; a function is refused without importing Lightning
        import lightning

        if issubclass(cls, tuple(getattr(lightning, n) for n in names)):
            return cls
    raise SeqpipeError(
        f"{key} {class_path!r} is not a {' or '.join(names)} subclass",
        where=where,
        fix=f"name a {' or '.join(names)} subclass, e.g. "
        + ("seqpipe.data.TextDataModule" if section == "data" else "seqpipe.models.RecurrentModel"),
    )


def section_target(sec: dict[str, Any], section: str, where: Any) -> Any:
    """What a data/model section's init_args are checked against. A datamodule a domain declares with a
    torch-free store builder (seqpipe.registry.store_builder) is checked against that builder: a declared
    datamodule, and no torch imported. Anything else must pass the class_path rule (lightning_class)."""
    if section == "data" and isinstance(sec["class_path"], str) and _DOTTED.fullmatch(sec["class_path"]):
        builder = store_builder(sec["class_path"])
        if builder is not None:
            return builder
    return lightning_class(sec["class_path"], section, where)


# -- checking -----------------------------------------------------------------------------------
def unknown_key(key: str, valid: list[str] | tuple[str, ...], where: Any, section: str = "") -> SeqpipeError:
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    full = f"{section}.{key}" if section else key
    hint = f"did you mean '{section + '.' if section else ''}{close[0]}'?" if close else f"valid keys: {sorted(valid)}"
    return SeqpipeError(f"unknown config key '{full}'", where=where, fix=hint)


def check_config(cfg: dict[str, Any], where: Any = None, data_only: bool = False) -> None:
    """Unknown keys are errors; values take their constructor argument's type (in place)."""
    for key in cfg:
        if key not in TOP_KEYS and key not in ("config_path", "profile"):
            raise unknown_key(key, TOP_KEYS, where)
    for section in ("data",) if data_only else ("data", "model"):
        # a base file may hold a partial model section (a profile's init_args) that experiments complete
        if section in cfg and not (section == "model" and "class_path" not in (cfg[section] or {})):
            _check_class_section(cfg[section], section, where)
    if cfg.get("trainer") and not data_only:
        import lightning

        # scalars only: seqpipe reads some values itself before Lightning does (precision: auto)
        _check_args(lightning.Trainer, cfg["trainer"], "trainer", where, typed=False)
        if "max_time" in cfg["trainer"]:
            cfg["trainer"]["max_time"] = normalize_duration(cfg["trainer"]["max_time"], where)
    _check_keys(cfg.get("fit") or {}, FIT_KEYS, "fit", where)
    _check_keys(cfg.get("pipeline") or {}, PIPELINE_KEYS, "pipeline", where)
    if cfg.get("evaluate") and not data_only:
        from seqpipe.registry import evaluate_keys

        _check_keys(cfg["evaluate"], evaluate_keys(cfg["domain"]), "evaluate", where)
    if "seed" in cfg:
        cfg["seed"] = coerce(cfg["seed"], int, "seed", where)


def _check_keys(values: dict[str, Any], valid: dict[str, str] | tuple[str, ...], section: str, where: Any) -> None:
    if not isinstance(values, dict):
        raise SeqpipeError(f"'{section}' must be a mapping", where=where)
    for key in values:
        if key not in valid:
            raise unknown_key(key, tuple(valid), where, section)


def _check_class_section(sec: Any, section: str, where: Any) -> None:
    if not isinstance(sec, dict) or "class_path" not in sec:
        raise SeqpipeError(
            f"'{section}' needs class_path (and init_args)",
            where=where,
            fix=f"write {section}: {{class_path: ..., init_args: {{...}}}}",
        )
    _check_keys(sec, SECTION_KEYS, section, where)
    sec["init_args"] = sec.get("init_args") or {}
    if not isinstance(sec["init_args"], dict):
        raise SeqpipeError(f"'{section}.init_args' must be a mapping", where=where)
    target = section_target(sec, section, where)
    _check_args(target, sec["init_args"], f"{section}.init_args", where, skip=INJECTED.get(section, ()))


def accepted_args(cls: Any) -> dict[str, inspect.Parameter]:
    """Constructor parameters by name; a class forwarding **kwargs names where they go
    (``config_kwargs_target``), so those are checked too."""
    params = dict(inspect.signature(_constructor(cls)).parameters)
    params.pop("self", None)
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        target = getattr(cls, "config_kwargs_target", None)
        params = {k: p for k, p in params.items() if p.kind is not p.VAR_KEYWORD}
        if target is None:
            return {**params, "*": None}  # accepts anything
        params = {**accepted_args(target), **params}
    return params


def _check_args(
    cls: Any, args: dict[str, Any], section: str, where: Any, skip: tuple[str, ...] = (), typed: bool = True
) -> None:
    """Keys against ``cls``'s parameters; values coerced to their scalar type (``5e-05`` -> float, 3 -> 3.0 for
    a float), then, where ``typed``, validated by jsonargparse against the full annotation."""
    params = accepted_args(cls)
    hints = type_hints([c for c in (getattr(cls, "config_kwargs_target", None), cls) if c is not None], _constructor)
    for key in list(args):
        if key in skip:
            raise SeqpipeError(f"'{section}.{key}' is set by seqpipe, not by configs", where=where, fix=f"remove {key}")
        if key not in params:
            if "*" in params:
                continue
            raise unknown_key(key, [k for k in params if k not in skip], where, section)
        if key in hints:
            args[key] = coerce(args[key], hints[key], f"{section}.{key}", where)
            if typed:
                validate(args[key], hints[key], f"{section}.{key}", where)


def _constructor(cls: Any) -> Any:
    """What a config's arguments are passed to: a class's ``__init__``, or a function itself (a store builder)."""
    return cls.__init__ if isinstance(cls, type) else cls
