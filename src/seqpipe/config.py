"""Experiment configs: one YAML an experiment under pipelines/, in Lightning's class_path style.

    base: [../text/lstm.yaml, base.yaml]   # optional: shared files (paths relative to this one) merged under
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

``base:`` is one file or a list: the files are merged in order (a later one wins), each on top of its own
bases, and a file reached twice (a shared base) is merged once, where it is first reached. The config
checks itself when loaded (seqpipe.config_check): the data and model sections against their constructors'
signatures by jsonargparse. A profile is applied first, then ``--set`` overrides, so an explicit ``--set``
always wins. docs/configs.md is the user's page.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import yaml

from seqpipe.config_check import (  # noqa: F401  (re-exported: the config API in one place)
    FIT_KEYS,
    PIPELINE_KEYS,
    TOP_KEYS,
    accepted_args,
    check_config,
    import_class,
    lightning_class,
    normalize_duration,
    unknown_key,
)
from seqpipe.errors import SeqpipeError

REQUIRED = ("name", "domain", "data")  # fit also needs "model"
MAX_BASES = 32  # files in one config's base tree: more is a mistake (a cycle is caught on its own)


# -- YAML 1.2 scalars ---------------------------------------------------------------------------
class ConfigLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 scalars: ``1e-3`` and ``5e-05`` are floats (DVC writes small floats that
    way), ``1:00:00:00`` stays a string rather than the sexagesimal int 216000, and ``2001-01-01`` is the
    string it reads as (YAML 1.2 has no implicit dates; the datamodules take dates as ISO strings)."""


_INT, _FLOAT, _DATE = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"
ConfigLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT, _DATE)]
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


def read_yaml_with_base(path: Path) -> dict[str, Any]:
    """A config with its ``base:`` files merged underneath (base_files gives the order)."""
    cfg: dict[str, Any] = {}
    for f in base_files(path):
        cfg = deep_merge(cfg, {k: v for k, v in read_yaml(f).items() if k != "base"})
    return cfg


def base_files(path: str | Path) -> list[Path]:
    """The files a config is merged from, the first merged first and the file itself last: each file's bases
    (in their listed order) come before it, and a file reached a second time is not merged again."""
    order: list[Path] = []

    def visit(f: Path, stack: tuple[Path, ...]) -> None:
        if f in stack:
            cycle = " -> ".join(p.as_posix() for p in (*stack[stack.index(f) :], f))
            raise SeqpipeError(f"`base:` files form a cycle ({cycle})", where=stack[-1], fix="remove one of them")
        if f in order:
            return
        if len(order) >= MAX_BASES:
            raise SeqpipeError(f"more than {MAX_BASES} `base:` files", where=path)
        for base in bases_of(f):
            visit(base, (*stack, f))
        order.append(f)

    visit(Path(os.path.normpath(path)), ())
    return order


def bases_of(path: Path) -> list[Path]:
    """The files a config's own ``base:`` names (one path or a list), relative to it and normalized
    (pipelines/kjv/../text/base.yaml -> pipelines/text/base.yaml)."""
    base = read_yaml(path).get("base")
    names = [] if base is None else [base] if isinstance(base, str) else base
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise SeqpipeError(
            f"`base:` must be a file or a list of files, got {base!r}", where=path, fix="write base: [a.yaml, b.yaml]"
        )
    files = [Path(os.path.normpath(path.parent / n)) for n in names]
    for name, f in zip(names, files, strict=True):
        if not f.exists():
            raise SeqpipeError(f"`base:` file {name} not found ({f})", where=path, fix="a base is relative to its file")
    return files


def base_chain(path: str | Path) -> list[Path]:
    """The file and every ``base:`` file under it, the file itself first (the one that wins first)."""
    return base_files(path)[::-1]


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


def instantiate(section: dict[str, Any], **extra: Any) -> Any:
    """Build ``class_path(**init_args, **extra)``; only a LightningModule or LightningDataModule is built
    (a config names classes, never an arbitrary callable such as ``os.system``)."""
    section = copy.deepcopy(section)
    cls = lightning_class(section.get("class_path"), None, where="config")
    return cls(**(section.get("init_args") or {}), **extra)
