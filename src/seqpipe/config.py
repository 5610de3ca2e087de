"""Experiment configs: one YAML an experiment under pipelines/, in Lightning's class_path style.

    base: base.yaml                 # optional: a shared file (path relative to this one) merged under
    name: text-lstm                 # experiment name = MLflow run name = metrics/<name>.json
    domain: text
    data:  {class_path: seqpipe.data.TextDataModule, init_args: {...}}
    model: {class_path: seqpipe.models.RecurrentModel, init_args: {...}}
    trainer: {...}                  # lightning.Trainer arguments
    evaluate: {...}                 # domain evaluator arguments
    profiles: {fast: {"trainer.max_steps": 20, ...}}   # dotted overrides a profile applies

Overrides (``--set a.b.c=value``, values parsed as YAML) are how the DVC stages pass params.yaml
values into any key; a profile is applied after them, so ``profile: fast`` shrinks every run.
"""

from __future__ import annotations

import copy
import importlib
from pathlib import Path
from typing import Any

import yaml

from seqpipe.errors import SeqpipeError

REQUIRED = ("name", "domain", "data")  # fit also needs "model"


def load_config(path: str | Path, overrides: list[str] | None = None, profile: str | None = None) -> dict[str, Any]:
    path = Path(path)
    cfg = read_yaml_with_base(path)
    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        raise SeqpipeError(f"config lacks keys {missing}", where=path, fix=f"a config needs {list(REQUIRED)}")
    profiles = cfg.pop("profiles", {}) or {}
    for item in overrides or []:
        if "=" not in item:
            raise SeqpipeError(f"override '{item}' is not key=value", fix="write --set model.init_args.hidden_size=512")
        key, raw = item.split("=", 1)
        set_dotted(cfg, key.strip(), yaml.safe_load(raw))
    if profile and profile != "default":  # applied last: a profile (e.g. fast for CI) shrinks whatever was set
        if profile not in profiles:
            raise SeqpipeError(f"unknown profile '{profile}'", where=path, fix=f"use one of {['default', *profiles]}")
        for key, value in profiles[profile].items():
            set_dotted(cfg, key, value)
    cfg.setdefault("trainer", {})
    cfg.setdefault("evaluate", {})
    cfg["config_path"] = str(path)
    cfg["profile"] = profile or "default"
    return cfg


def read_yaml_with_base(path: Path, depth: int = 0) -> dict[str, Any]:
    """Read a config; a ``base:`` file (relative to it, itself possibly based) is merged underneath."""
    if not path.exists():
        raise SeqpipeError("config file not found", where=path, fix="pass an experiment YAML from pipelines/")
    if depth > 8:
        raise SeqpipeError("`base:` chain deeper than 8 (a cycle?)", where=path)
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise SeqpipeError(f"not valid YAML: {e}", where=path, fix="fix the YAML syntax") from e
    if not isinstance(cfg, dict):
        raise SeqpipeError("config must be a mapping", where=path)
    if "base" in cfg:
        cfg = deep_merge(read_yaml_with_base(path.parent / cfg.pop("base"), depth + 1), cfg)
    return cfg


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
    except (ImportError, AttributeError) as e:
        raise SeqpipeError(f"cannot import '{class_path}': {e}", fix="check class_path in the config") from e


def instantiate(section: dict[str, Any], **extra: Any) -> Any:
    """Build ``class_path(**init_args, **extra)``."""
    section = copy.deepcopy(section)
    cls = import_class(section["class_path"])
    return cls(**(section.get("init_args") or {}), **extra)
