"""The shared data layer: prepared stores, windows, the DataSpec contract and the datamodules.

Datamodules are importable on their own in any Lightning project (no DVC or MLflow needed)::

    from seqpipe.data import TextDataModule
    dm = TextDataModule(source="my_corpus.txt", prepared_dir="prepared/my_corpus")

Names are imported on first use, so ``seqpipe.data.TextDataModule`` loads the text module alone,
not every domain's readers (and a DVC stage depends on the code it really runs).
"""

from __future__ import annotations

import importlib
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


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        try:
            module = importlib.import_module(_WHERE[name])
        except ImportError as e:  # an optional package of another extra: say which extra to install
            raise (missing_extra(e) or e) from e
        return getattr(module, name)
    raise AttributeError(f"module 'seqpipe.data' has no attribute {name!r}")
