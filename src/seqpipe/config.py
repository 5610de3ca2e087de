"""Experiment configs: one YAML an experiment under pipelines/, in Lightning's class_path style.

    base: base.yaml                 # optional: a shared file (path relative to this one) merged under
    name: text-lstm                 # experiment name = MLflow run name = metrics/<name>.json
    domain: text
    seed: 0
    data:  {class_path: seqpipe.data.TextDataModule, init_args: {...}}
    model: {class_path: seqpipe.models.RecurrentModel, init_args: {...}}
    trainer: {...}                  # lightning.Trainer arguments
    fit: {...}                      # seqpipe fit settings (FIT_KEYS)
    evaluate: {...}                 # the domain evaluator's settings (its EVALUATE_KEYS)
    pipeline: {...}                 # how `seqpipe dvc-yaml` turns this file into DVC stages (PIPELINE_KEYS)
    profiles: {fast: {"trainer.max_steps": 20, ...}}   # dotted overrides a profile applies

The config checks itself when loaded: values take the type of the constructor argument they feed
(``5e-05`` is a float, as in YAML 1.2 -- PyYAML's YAML 1.1 would read a string), and an unknown key
anywhere is a one-line error naming the closest valid key. A profile is applied first, then
``--set`` overrides, so an explicit ``--set`` always wins.
"""

from __future__ import annotations

import copy
import difflib
import importlib
import inspect
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Union

import yaml

from seqpipe.errors import SeqpipeError, missing_extra
from seqpipe.registry import store_builder

REQUIRED = ("name", "domain", "data")  # fit also needs "model"
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


# -- YAML 1.2 numbers ---------------------------------------------------------------------------
class ConfigLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 ints and floats: ``1e-3`` and ``5e-05`` are floats (DVC writes small
    floats that way), and ``1:00:00:00`` stays a string rather than the sexagesimal int 216000."""


_INT, _FLOAT = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
ConfigLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT)]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ConfigLoader.add_implicit_resolver(_INT, re.compile(r"^[-+]?(0|[1-9][0-9_]*)$|^0x[0-9a-fA-F_]+$"), list("-+0123456789"))
ConfigLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?$|^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$"
    ),
    list("-+0123456789."),
)


def parse_value(raw: str) -> Any:
    """A ``--set`` value, read as YAML 1.2 (``--set lr=1e-3`` is a float); text that is no YAML value
    (``--set data.init_args.date_format=%d/%m/%Y``) is taken as the string it is."""
    try:
        return yaml.load(raw, Loader=ConfigLoader)
    except yaml.YAMLError:
        return raw


# -- loading ------------------------------------------------------------------------------------
def load_config(
    path: str | Path,
    overrides: list[str] | None = None,
    profile: str | None = None,
    check: bool = True,
    data_only: bool = False,
) -> dict[str, Any]:
    """The experiment config: base files merged, the profile and ``--set`` overrides applied, then checked.

    ``data_only`` (the preprocess stage): check the keys and the data section but leave the model, trainer and
    evaluate sections to the stages that use them, so preprocessing imports no model code, torch or Lightning
    where the datamodule has a torch-free store builder.
    """
    path = Path(path)
    cfg = read_yaml_with_base(path)
    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        raise SeqpipeError(f"config lacks keys {missing}", where=path, fix=f"a config needs {list(REQUIRED)}")
    profiles = cfg.pop("profiles", {}) or {}
    if profile and profile != "default":  # first: a profile (e.g. fast for CI) shrinks the run, --set still wins
        if profile not in profiles:
            raise SeqpipeError(f"unknown profile '{profile}'", where=path, fix=f"use one of {['default', *profiles]}")
        for key, value in profiles[profile].items():
            set_dotted(cfg, key, value)
    for item in overrides or []:
        if "=" not in item:
            raise SeqpipeError(f"override '{item}' is not key=value", fix="write --set model.init_args.hidden_size=512")
        key, raw = item.split("=", 1)
        set_dotted(cfg, key.strip(), parse_value(raw))
    cfg.setdefault("trainer", {})
    cfg.setdefault("evaluate", {})
    cfg.setdefault("fit", {})
    if check:
        check_config(cfg, where=path, data_only=data_only)
    cfg["config_path"] = str(path)
    cfg["profile"] = profile or "default"
    return cfg


def read_yaml_with_base(path: Path, depth: int = 0) -> dict[str, Any]:
    """Read a config; a ``base:`` file (relative to it, itself possibly based) is merged underneath."""
    cfg = read_yaml(path)
    if depth > 8:
        raise SeqpipeError("`base:` chain deeper than 8 (a cycle?)", where=path)
    if "base" in cfg:
        cfg = deep_merge(read_yaml_with_base(path.parent / cfg.pop("base"), depth + 1), cfg)
    return cfg


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise SeqpipeError("config file not found", where=path, fix="pass an experiment YAML from pipelines/")
    try:
        cfg = yaml.load(path.read_text(), Loader=ConfigLoader)
    except yaml.YAMLError as e:
        raise SeqpipeError(f"not valid YAML: {e}", where=path, fix="fix the YAML syntax") from e
    if not isinstance(cfg, dict):
        raise SeqpipeError("config must be a mapping", where=path)
    return cfg


def base_chain(path: str | Path) -> list[Path]:
    """The file and every ``base:`` file under it, the file itself first."""
    chain, path = [], Path(path)
    while True:
        chain.append(path)
        base = read_yaml(path).get("base")
        if base is None or len(chain) > 8:
            return chain
        path = Path(os.path.normpath(path.parent / base))  # pipelines/kjv/../text/base.yaml -> pipelines/text/base.yaml


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` wins; nested mappings merge key by key."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def set_dotted(cfg: dict[str, Any], key: str, value: Any) -> None:
    node = cfg
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise SeqpipeError(f"cannot set '{key}': '{p}' is not a mapping")
    node[parts[-1]] = value


def import_class(class_path: str) -> type:
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as e:
        raise (
            missing_extra(e) or SeqpipeError(f"cannot import '{class_path}': {e}", fix="check class_path in the config")
        ) from e
    except AttributeError as e:
        raise SeqpipeError(f"cannot import '{class_path}': {e}", fix="check class_path in the config") from e


def instantiate(section: dict[str, Any], **extra: Any) -> Any:
    """Build ``class_path(**init_args, **extra)``."""
    section = copy.deepcopy(section)
    cls = import_class(section["class_path"])
    return cls(**(section.get("init_args") or {}), **extra)


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

        _check_args(lightning.Trainer, cfg["trainer"], "trainer", where)
        if "max_time" in cfg["trainer"]:
            cfg["trainer"]["max_time"] = normalize_duration(cfg["trainer"]["max_time"], where)
    _check_keys(cfg.get("fit") or {}, FIT_KEYS, "fit", where)
    _check_keys(cfg.get("pipeline") or {}, PIPELINE_KEYS, "pipeline", where)
    if cfg.get("evaluate") and not data_only:
        from seqpipe.registry import evaluate_keys

        _check_keys(cfg["evaluate"], evaluate_keys(cfg["domain"]), "evaluate", where)
    if "seed" in cfg:
        cfg["seed"] = _coerce(cfg["seed"], int, "seed", where)


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
    # a torch-free store builder takes the datamodule's arguments: checking against it imports no torch
    cls = (section == "data" and store_builder(sec["class_path"])) or import_class(sec["class_path"])
    _check_args(cls, sec["init_args"], f"{section}.init_args", where, skip=INJECTED.get(section, ()))


def accepted_args(cls: type) -> dict[str, inspect.Parameter]:
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


def _check_args(cls: type, args: dict[str, Any], section: str, where: Any, skip: tuple[str, ...] = ()) -> None:
    params = accepted_args(cls)
    hints = _type_hints(cls)
    for key in list(args):
        if key in skip:
            raise SeqpipeError(f"'{section}.{key}' is set by seqpipe, not by configs", where=where, fix=f"remove {key}")
        if key not in params:
            if "*" in params:
                continue
            raise unknown_key(key, [k for k in params if k not in skip], where, section)
        if key in hints:
            args[key] = _coerce(args[key], hints[key], f"{section}.{key}", where)


def _constructor(cls: Any) -> Any:
    """What a config's arguments are passed to: a class's ``__init__``, or a function itself (a store builder)."""
    return cls.__init__ if isinstance(cls, type) else cls


def _type_hints(cls: type) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    for klass in reversed([c for c in (getattr(cls, "config_kwargs_target", None), cls) if c is not None]):
        try:
            hints.update(typing.get_type_hints(_constructor(klass)))
        except Exception:  # unresolvable annotations: leave those values as YAML gave them
            pass
    return hints


def _coerce(value: Any, hint: Any, key: str, where: Any) -> Any:
    """``value`` as the annotation ``hint`` wants it: numbers from strings, ints as floats; a clear
    error when a plain scalar type cannot take it. Complex annotations are left to the constructor."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (Union, types.UnionType) else (hint,)
    if value is None:
        return value
    scalars = [t for t in options if t in (bool, int, float, str)]
    if any(t is Any for t in options) or len(scalars) < len(options) - (type(None) in options):
        return value  # containers, paths, Any: the constructor validates them
    if isinstance(value, bool):
        if bool in scalars:
            return value
    elif isinstance(value, int) and (int in scalars or float in scalars):
        return value if int in scalars else float(value)
    elif isinstance(value, float) and float in scalars:
        return value
    elif isinstance(value, float) and int in scalars and value.is_integer():
        return int(value)
    elif isinstance(value, str):
        if str in scalars:
            return value
        for t in (int, float):
            if t in scalars:
                try:
                    return t(value.replace("_", ""))
                except ValueError:
                    pass
    names = " or ".join(t.__name__ for t in scalars + ([type(None)] if type(None) in options else []))
    raise SeqpipeError(f"'{key}' must be {names}, got {value!r}", where=where, fix=f"set {key} to a {names}")


def normalize_duration(value: Any, where: Any = None) -> Any:
    """trainer.max_time as Lightning takes it: "DD:HH:MM:SS", a number of seconds, or a dict."""
    if isinstance(value, bool):
        raise SeqpipeError(f"trainer.max_time must be a duration, got {value!r}", where=where)
    if isinstance(value, (int, float)):
        s = int(round(value))
        return f"{s // 86400:02d}:{s % 86400 // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
    if isinstance(value, str) and not re.fullmatch(r"\d+:\d{1,2}:\d{1,2}:\d{1,2}", value.strip()):
        raise SeqpipeError(
            f"trainer.max_time {value!r} is not DD:HH:MM:SS",
            where=where,
            fix='write "00:01:00:00" (one hour) or a number of seconds',
        )
    return value
