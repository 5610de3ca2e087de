"""Models: composed from front end -> fused recurrent core -> head, each built from a DataSpec.

Names are imported on first use (see seqpipe.data), so a stage loads the model file it needs.
"""

from __future__ import annotations

import importlib
from typing import Any

from seqpipe.errors import missing_extra

_WHERE = {
    "CRNN": "seqpipe.models.crnn",
    "RecurrentModel": "seqpipe.models.recurrent",
    "Seq2Seq": "seqpipe.models.seq2seq",
    "SeedGroup": "seqpipe.models.seeds",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        try:
            module = importlib.import_module(_WHERE[name])
        except ImportError as e:  # an optional package of another extra: say which extra to install
            raise (missing_extra(e) or e) from e
        return getattr(module, name)
    raise AttributeError(f"module 'seqpipe.models' has no attribute {name!r}")
