"""The one contract between seqpipe's core and a domain.

A domain is one package (``seqpipe/domains/<name>/`` or any importable package of a user's own) whose
``__init__`` defines ``DOMAIN = Domain(...)``: its name, its task module, its datamodules and the
optional packages it needs. Everything else the core asks of a domain goes through the task module::

    baselines(dm, cfg) -> dict                                   # fitted on train, chosen on val, scored on test
    evaluate(model, dm, cfg, baselines, out_dir) -> Evaluation   # seqpipe.evaluation.Evaluation
    predict(model, paths) -> list[dict]                          # optional: `seqpipe predict`
    EVALUATE_KEYS: dict[str, str]                                # optional: its `evaluate:` config keys
    DVC_REPORTS: dict                                            # optional: its report files and DVC plots

Names are strings (``"pkg.module"``, ``"pkg.module:function"``), imported on first use, so reading a
domain's declaration never imports torch, pandas or librosa.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from seqpipe.errors import EXTRA_OF, SeqpipeError, missing_extra


@dataclass(frozen=True)
class Domain:
    """What a domain declares about itself.

    name:           the value of ``domain:`` in a config, the checkpoint's ``data_info["domain"]``, the
                    MLflow experiment, the ``domain`` of metrics/<experiment>.json.
    task:           module with baselines / evaluate (and optionally predict, EVALUATE_KEYS, DVC_REPORTS).
    datamodules:    public class name -> module defining it (``from <domain package> import <name>`` works).
    store_builders: datamodule class name -> ``"module:function"`` building its store without torch
                    (``seqpipe preprocess`` calls it with the data section's arguments).
    extra, packages: the pip extra and the optional top-level packages it needs: importing one that is
                    missing becomes a one-line error naming the extra.
    builds_on:      domains whose public modules this one reuses (digit strings are spoken audio, ...).
    """

    name: str
    task: str
    datamodules: dict[str, str] = field(default_factory=dict)
    store_builders: dict[str, str] = field(default_factory=dict)
    extra: str | None = None
    packages: tuple[str, ...] = ()
    builds_on: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for package in self.packages:  # so an ImportError of one names this domain's extra
            EXTRA_OF.setdefault(package, self.extra or "all")

    def task_module(self) -> ModuleType:
        return _import(self.task, f"domain '{self.name}'")

    def export(self, name: str, package: str) -> Any:
        """``from <domain package> import <Datamodule>`` (the package's module ``__getattr__`` calls this)."""
        if name not in self.datamodules:
            raise AttributeError(f"module '{package}' has no attribute {name!r}")
        return getattr(_import(self.datamodules[name], f"domain '{self.name}'"), name)

    def store_builder(self, class_name: str) -> Any:
        target = self.store_builders.get(class_name)
        if target is None:
            return None
        module, _, func = target.partition(":")
        return getattr(_import(module, f"domain '{self.name}'"), func)


def _import(module: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise (missing_extra(e) or SeqpipeError(f"cannot import {module} for {what}: {e}")) from e
