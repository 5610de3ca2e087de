"""``DnaRecord``: one record as a format reader yields it (raw bases, not yet validated or encoded)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass


@dataclass
class DnaRecord:
    id: str
    seq: bytes
    label: str | None
    split: str | None = None  # a split the source itself defines (genomic-benchmarks train/test, a CSV column)
    where: str = ""  # file (and line) for messages


def _text(value: str) -> str:
    """Ids and labels: stripped, Unicode NFC (so 'é' typed two ways is one class)."""
    value = value.strip()
    return value if value.isascii() else unicodedata.normalize("NFC", value)
