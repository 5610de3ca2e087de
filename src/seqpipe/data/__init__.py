"""The shared data layer: prepared stores, windows, seeded sampling, the DataSpec contract and the
datamodule base every domain's datamodule extends.

A domain's datamodule is importable on its own in any Lightning project (no DVC or MLflow needed)::

    from seqpipe.data import TextDataModule   # the text domain's datamodule, found through seqpipe.registry
    dm = TextDataModule(source="my_corpus.txt", prepared_dir="prepared/my_corpus")

Names are imported on first use, so ``seqpipe.data.TextDataModule`` loads the text domain alone (through the
registry), not every domain's readers (and a DVC stage depends on the code it really runs).
"""

from __future__ import annotations

import importlib
from typing import Any

from seqpipe.errors import missing_extra

_WHERE = {
    "DataSpec": "seqpipe.data.spec",
    "PreparedStore": "seqpipe.data.store",
    "SequenceDataModule": "seqpipe.data.module",
    "StoreWriter": "seqpipe.data.store",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        try:
            module = importlib.import_module(_WHERE[name])
        except ImportError as e:  # an optional package of another extra: say which extra to install
            raise (missing_extra(e) or e) from e
        return getattr(module, name)
    if name.endswith("DataModule"):  # a built-in domain's datamodule, found through the registry
        from seqpipe import registry

        found = registry.find_datamodule(name)
        if found is not None:
            return found
    raise AttributeError(f"module 'seqpipe.data' has no attribute {name!r}")
