"""The knobs of DNA input checking (``DnaRules``), the report of what was repaired, and the read bound.

Separate because every step shares them: encoding reads ``strict``/``convert_u`` and counts ambiguity
codes in the report, the format readers stop at ``read_limit``, and validation reads the lengths.
The rules themselves are listed in ``seqpipe.domains.dna.source``'s docstring.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DnaRules:
    """How bases, lengths and labels are checked (see the module docstring)."""

    strict: bool = True
    convert_u: bool = False
    max_len: int | None = None
    min_len: int = 1


@dataclass
class ReadReport:
    """What was repaired or skipped, kept in meta.json and printed by the preprocess stage."""

    ambiguous_to_n: dict[str, int] = field(default_factory=dict)  # id -> IUPAC codes replaced
    cropped: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "ambiguous_to_n_records": len(self.ambiguous_to_n),
            "ambiguous_to_n_bases": int(sum(self.ambiguous_to_n.values())),
            "cropped_records": len(self.cropped),
            "cropped_ids": self.cropped[:50],
            "skipped": self.skipped[:200],
            "skipped_count": len(self.skipped),
        }


CROP_READ_FACTOR = 10  # records are read up to max_len x this, then cropped (lenient) or refused (strict)
NO_MAX_LEN_BASES = 50_000_000  # without max_len, a record longer than this is an error (set data.max_len)


def read_limit(rules: DnaRules) -> int:
    """Most bases a record may reach while it is being read (memory stays bounded by this)."""
    return rules.max_len * CROP_READ_FACTOR if rules.max_len else NO_MAX_LEN_BASES
