"""Non-finite values refused where they enter an audio store: a clip's features and the normalization statistics.

Decoding already refuses NaN/inf samples and absurd peaks (source.read_clip); this is the last gate before the
store is written, so a NaN that slips through another way (a feature setting, an overflow) names its clip instead
of turning every normalized frame, and then training, into NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seqpipe.errors import SeqpipeError


def check_finite(feats: Sequence[np.ndarray], paths: Sequence[Path], normalization: Mapping[str, Any]) -> None:
    """Refuse the first clip whose features hold NaN/inf (naming its file), then a non-finite mean or std
    (``normalization`` as meta.json keeps it)."""
    mean, std = np.asarray(normalization["mean"], dtype=float), np.asarray(normalization["std"], dtype=float)
    for f, path in zip(feats, paths, strict=True):
        if not np.isfinite(f).all():
            raise SeqpipeError(
                f"the clip's log-mel features hold {int((~np.isfinite(f)).sum())} non-finite value(s)",
                where=path,
                fix="re-export the file with samples in [-1, 1], or remove it",
            )
    if not (np.isfinite(mean).all() and np.isfinite(std).all()):
        raise SeqpipeError(
            "the normalization mean/std over the train clips is not finite",
            where=Path(paths[0]).parent if paths else None,
            fix="look for clips with extreme sample values (seqpipe refuses peaks over 1e3) and remove them",
        )
