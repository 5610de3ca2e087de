"""The shared data layer: prepared stores, windows, the DataSpec contract and the datamodules.

Datamodules are importable on their own in any Lightning project (no DVC or MLflow needed)::

    from seqpipe.data import TextDataModule
    dm = TextDataModule(source="my_corpus.txt", prepared_dir="prepared/my_corpus")

Names are imported on first use, so ``seqpipe.data.TextDataModule`` loads the text module alone,
not every domain's readers (and a DVC stage depends on the code it really runs).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from seqpipe.errors import missing_extra

_WHERE = {
    "AudioDataModule": "seqpipe.data.audio",
    "DNADataModule": "seqpipe.data.dna",
    "DataSpec": "seqpipe.data.spec",
    "PreparedStore": "seqpipe.data.store",
    "SequenceDataModule": "seqpipe.data.module",
    "StockDataModule": "seqpipe.data.stocks",
    "StoreWriter": "seqpipe.data.store",
    "TextDataModule": "seqpipe.data.text",
}
__all__ = sorted(_WHERE)
# Datamodules whose store a torch-free function builds from the same arguments: `seqpipe preprocess` calls it
# instead of the datamodule, so preprocessing a large corpus holds numpy in memory, not torch and Lightning.
_STORE_BUILDERS = {"TextDataModule": "seqpipe.data.text_prepare:build_text_store"}


def store_builder(class_path: str) -> Callable[..., Any] | None:
    """The torch-free store builder of the datamodule at ``class_path``, or None when it has none."""
    module, _, name = class_path.rpartition(".")
    if name not in _STORE_BUILDERS or module not in ("seqpipe.data", _WHERE.get(name)):
        return None
    where, func = _STORE_BUILDERS[name].split(":")
    return getattr(importlib.import_module(where), func)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        try:
            module = importlib.import_module(_WHERE[name])
        except ImportError as e:  # an optional package of another extra: say which extra to install
            raise (missing_extra(e) or e) from e
        return getattr(module, name)
    raise AttributeError(f"module 'seqpipe.data' has no attribute {name!r}")
