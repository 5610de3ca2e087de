"""The spoken digit-string store's preprocessing settings, declared once (``DigitsSettings``).

The datamodule builds them from its arguments, ``prepare_digits`` reads them, meta.json["settings"] records
them (compared by fit and evaluate) and the fingerprint hashes them: see seqpipe.domains.audio.settings,
whose ``ClipSettings`` methods these share.
"""

from __future__ import annotations

from dataclasses import dataclass

from seqpipe.domains.audio.features import FeatureConfig
from seqpipe.domains.audio.settings import ClipSettings


@dataclass(frozen=True)
class DigitsSettings(ClipSettings):
    """How a manifest of digit-string utterances becomes a store (DigitStringsDataModule's arguments).

    ``features.max_seconds``: longer utterances are bad input (cropping would cut digits off);
    ``max_digits``: the longest digit string accepted.
    """

    features: FeatureConfig = FeatureConfig(max_seconds=6.0)
    max_digits: int = 7
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0
    strict: bool = True
