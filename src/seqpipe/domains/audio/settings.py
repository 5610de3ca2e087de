"""The audio store's preprocessing settings, declared once (``AudioSettings``).

The datamodule builds them from its arguments (``from_args``), the builder (``prepare_audio``) reads them,
meta.json["settings"] records them (``recorded``: what fit and evaluate compare, data/store.check_settings)
and the store's fingerprint hashes them (``fingerprint_extra``). A new setting is one more field here.

``ClipSettings`` holds what the audio and spoken digit-string stores share: log-mel ``features`` (recorded
flat, fingerprinted as one dict) and the split fractions (fingerprinted under their older short names,
so fingerprints stay what earlier versions computed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from seqpipe.domains.audio.channel import ChannelConfig
from seqpipe.domains.audio.features import FeatureConfig
from seqpipe.errors import SeqpipeError

FINGERPRINT_NAMES = {"val_fraction": "val", "test_fraction": "test"}  # the names fingerprints have always used


def _plain(value: Any) -> Any:
    """A setting as meta.json and the fingerprint hold it (configs as their dicts)."""
    return value.to_dict() if hasattr(value, "to_dict") else value


class ClipSettings:
    """Methods of a frozen settings dataclass with a ``features: FeatureConfig`` field."""

    features: FeatureConfig

    @classmethod
    def from_args(cls, args: Mapping[str, Any]):
        """The settings a datamodule's arguments give: each field, and each FeatureConfig field, by its name.
        A field the arguments lack keeps its default."""
        names = [f.name for f in fields(cls) if f.name != "features" and f.name in args]
        features = FeatureConfig(**{f.name: args[f.name] for f in fields(FeatureConfig)})
        return cls(features=features, **{name: args[name] for name in names})

    def recorded(self, source: str | Path) -> dict[str, Any]:
        """meta.json["settings"]: the source, the log-mel settings flat, then every other field."""
        rest = {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "features"}
        return {"source": str(source), **self.features.to_dict(), **rest}

    def fingerprint_extra(self, **data: Any) -> dict[str, Any]:
        """What the store's fingerprint hashes besides the files: every field, plus ``data`` (labels, speakers)."""
        return {FINGERPRINT_NAMES.get(f.name, f.name): _plain(getattr(self, f.name)) for f in fields(self)} | data


@dataclass(frozen=True)
class AudioSettings(ClipSettings):
    """How a labeled clip collection becomes an audio store (AudioDataModule's arguments of the same names).

    ``augment_copies``: random waveform renditions per train clip, stored as extra train records;
    ``channel``: the fixed real-recording chain of the channel-shifted val/test features.
    """

    features: FeatureConfig = FeatureConfig()
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0
    strict: bool = True
    augment_copies: int = 0
    channel: ChannelConfig = ChannelConfig()

    def check(self) -> None:
        """Refuse settings no store can be built with."""
        n = self.augment_copies
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise SeqpipeError(
                f"augment_copies must be a whole number >= 0, got {n!r}",
                fix="set data.init_args.augment_copies: 0 (none) or e.g. 2",
            )
