"""The registry: the one place the core finds domains.

A domain is found by the value of ``domain:`` in a config (or a checkpoint's ``data_info["domain"]``):
- a built-in name, ``seqpipe/domains/<name>/`` (the folder is the list: a new folder is a new domain);
- a package a user's project installs and names under the ``seqpipe.domains`` entry-point group;
- the module path of any importable package (``domain: ecg_beats``, ``domain: my_project.ecg``).
Each defines ``DOMAIN = seqpipe.domain.Domain(...)``; ``Domain.name`` must be the value that found it.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from seqpipe.domain import Domain
from seqpipe.errors import SeqpipeError, missing_extra

BUILTIN = "seqpipe.domains"
ENTRY_POINTS = "seqpipe.domains"
COMMON_EVALUATE_KEYS = {"baseline_key": "name of reports/baselines/<key>.json (default: the domain)"}


def builtin_names() -> list[str]:
    """The domains that ship with seqpipe (the folders of seqpipe/domains/)."""
    package = importlib.import_module(BUILTIN)
    return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.ispkg and not m.name.startswith("_"))


def installed() -> dict[str, str]:
    """Domain name -> package, for the built-in ones and those installed through entry points."""
    found = {name: f"{BUILTIN}.{name}" for name in builtin_names()}
    for ep in entry_points(group=ENTRY_POINTS):
        found.setdefault(ep.name, ep.value)
    return found


@cache
def get(name: str) -> Domain:
    """The domain called ``name`` (a built-in or entry-point name, or an importable package's module path)."""
    if not isinstance(name, str) or not name:
        raise SeqpipeError(f"domain must be a name, got {name!r}", where="config.domain")
    package = installed().get(name) or (name if "." in name or _importable(name) else None)
    if package is None:
        raise SeqpipeError(
            f"unknown domain '{name}'",
            where="config.domain",
            fix=f"use one of {sorted(installed())}, or the module path of an importable package that defines DOMAIN",
        )
    try:
        module = importlib.import_module(package)
    except ImportError as e:
        raise (
            missing_extra(e) or SeqpipeError(f"cannot import domain '{name}' ({package}): {e}", where="config.domain")
        ) from e
    domain = getattr(module, "DOMAIN", None)
    if not isinstance(domain, Domain):
        raise SeqpipeError(
            f"{package} defines no DOMAIN",
            where="config.domain",
            fix=f"use one of {sorted(installed())}, or add DOMAIN = seqpipe.domain.Domain(...) to {package}",
        )
    if domain.name != name and package != name:
        raise SeqpipeError(f"{package} declares domain '{domain.name}', not '{name}'", where="config.domain")
    return domain


def _importable(name: str) -> bool:
    """Whether a top-level package ``name`` is on the path (found, not imported)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def task(name: str) -> Any:
    """The task module of domain ``name`` (baselines, evaluate, predict, ...)."""
    return get(name).task_module()


def evaluate_keys(name: str) -> dict[str, str]:
    """The ``evaluate:`` keys domain ``name`` reads, with what each does."""
    return {**COMMON_EVALUATE_KEYS, **getattr(task(name), "EVALUATE_KEYS", {})}


def find_datamodule(class_name: str) -> Any:
    """A built-in domain's datamodule by its class name (``seqpipe.domains.text.TextDataModule`` still works)."""
    for name in builtin_names():
        domain = get(name)
        if class_name in domain.datamodules:
            return domain.export(class_name, f"{BUILTIN}.{name}")
    return None


def store_builder(class_path: str) -> Any:
    """The torch-free store builder of the datamodule at ``class_path``, or None when it has none. Only the
    domain's package (its cheap ``__init__``) is imported, never the datamodule's module."""
    module, _, class_name = class_path.rpartition(".")
    if module == "seqpipe.data":  # the short alias of a built-in datamodule
        owners = [get(name) for name in builtin_names() if class_name in get(name).datamodules]
    else:
        owners = [d for d in [_declaring_domain(module)] if d is not None and class_name in d.datamodules]
    return owners[0].store_builder(class_name) if owners else None


def _declaring_domain(module: str) -> Domain | None:
    """The Domain declared by the package holding ``module`` (its outermost package with a DOMAIN: importing
    the packages from the top down stops before the module itself, which may import torch)."""
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        try:
            candidate = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            return None
        if isinstance(getattr(candidate, "DOMAIN", None), Domain):
            return candidate.DOMAIN
    return None
