"""The DNA store's preprocessing settings, declared once (``DnaSettings``).

The datamodule builds them from its arguments (``from_args``), ``prepare_dna`` reads them (the input
``rules`` and CSV ``columns`` come from here), meta.json["settings"] records them (``recorded``: what fit
and evaluate compare, data/store.check_settings) and the store's fingerprint hashes them
(``fingerprint_extra``, in the layout fingerprints have always had). A new setting is one more field here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from seqpipe.domains.dna.source.rules import DnaRules
from seqpipe.errors import SeqpipeError


@dataclass(frozen=True)
class DnaSettings:
    """How a labeled DNA source becomes a store (DNADataModule's arguments of the same names).

    ``labels``: sidecar id,label CSV of a FASTA source (hashed as a file, so not in ``fingerprint_extra``);
    ``label_field``: the FASTA header's label key or field number; ``strict``/``convert_u``/``max_len``/
    ``min_len``: the input rules (``DnaRules``); the fractions split sources that define no split.
    """

    labels: str | Path | None = None
    label_field: str | int | None = "label"
    strict: bool = True
    convert_u: bool = False
    max_len: int | None = None
    min_len: int = 1
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0
    sequence_column: str = "sequence"
    label_column: str = "label"
    id_column: str = "id"

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> DnaSettings:
        """The settings a datamodule's arguments give, each field by its name (a missing one keeps its default)."""
        return cls(**{f.name: args[f.name] for f in fields(cls) if f.name in args})

    def rules(self) -> DnaRules:
        return DnaRules(strict=self.strict, convert_u=self.convert_u, max_len=self.max_len, min_len=self.min_len)

    def columns(self) -> dict[str, str]:
        """The CSV/TSV column names, as keyword arguments of the readers."""
        return dict(sequence_column=self.sequence_column, label_column=self.label_column, id_column=self.id_column)

    def check(self) -> None:
        """Refuse split fractions no store can be built with."""
        v, t = self.val_fraction, self.test_fraction
        if not (0 <= v < 1 and 0 < t < 1 and v + t < 1):
            raise SeqpipeError(
                "val_fraction and test_fraction must be in [0, 1) and sum below 1",
                where="data.val_fraction/test_fraction",
            )

    def recorded(self, source: str | Path) -> dict[str, Any]:
        """meta.json["settings"]: the source and every field (paths as strings)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {"source": str(source), **{k: (str(v) if isinstance(v, Path) else v) for k, v in values.items()}}

    def fingerprint_extra(self) -> dict[str, Any]:
        """What the store's fingerprint hashes besides the files (the labels file is one of those)."""
        return dict(
            rules=self.rules().__dict__,
            label_field=self.label_field,
            val=self.val_fraction,
            test=self.test_fraction,
            seed=self.seed,
            cols=list(self.columns().values()),
        )
