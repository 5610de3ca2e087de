"""JASPAR motifs: per-position base probabilities of real transcription-factor binding sites.

The JASPAR CORE databases ship inside the ``pyjaspar`` package as sqlite files, read here with the
standard library's sqlite3 (no biopython needed). Separate from the generator (seqpipe.domains.dna.motifs),
which plants instances of these motifs in background sequence.
"""

from __future__ import annotations

import importlib.util
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqpipe.errors import SeqpipeError


def jaspar_db(release: str = "JASPAR2024") -> Path:
    spec = importlib.util.find_spec("pyjaspar")
    if spec is None or not spec.submodule_search_locations:
        raise SeqpipeError(
            "the default DNA dataset needs the 'pyjaspar' package",
            where="pyjaspar",
            fix="pip install 'seqpipe[dna]' (pyjaspar ships the JASPAR motif databases)",
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / f"{release}.sqlite"
    if not path.exists():
        raise SeqpipeError(f"{release}.sqlite not found in pyjaspar", where=path, fix="pip install 'pyjaspar>=4'")
    return path


@dataclass
class Motif:
    name: str
    matrix_id: str
    probs: np.ndarray  # (length, 4) over A, C, G, T

    @property
    def length(self) -> int:
        return len(self.probs)


def load_motifs(names: list[str], release: str = "JASPAR2024", pseudocount: float = 0.25) -> list[Motif]:
    """Per-position base probabilities of each motif: a TF name (case-insensitive; its lowest CORE matrix
    id, latest version) or a matrix id (MA0139 = latest version, MA0139.2 = that version)."""
    con = sqlite3.connect(f"file:{jaspar_db(release)}?mode=ro", uri=True)
    motifs = []
    try:
        for name in names:
            base, _, version = name.partition(".")
            if re.fullmatch(r"MA\d{4}", base):  # a matrix id: MA0139 (latest version) or MA0139.2
                row = con.execute(
                    "SELECT ID, BASE_ID, VERSION, NAME FROM MATRIX WHERE BASE_ID=? AND "
                    "(?='' OR VERSION=?) ORDER BY VERSION DESC LIMIT 1",
                    (base, version, version or 0),
                ).fetchone()
            else:  # a TF name: its lowest (oldest, canonical) matrix id, latest version
                row = con.execute(
                    "SELECT ID, BASE_ID, VERSION, NAME FROM MATRIX WHERE COLLECTION='CORE' AND "
                    "upper(NAME)=upper(?) ORDER BY BASE_ID, VERSION DESC LIMIT 1",
                    (name,),
                ).fetchone()
            if row is None:
                raise SeqpipeError(
                    f"no JASPAR CORE matrix named {name!r}",
                    where=release,
                    fix="use a TF name from the JASPAR CORE collection, e.g. SOX2, GATA1, CTCF",
                )
            data = con.execute("SELECT row, col, val FROM MATRIX_DATA WHERE ID=?", (row[0],)).fetchall()
            length = max(c for _, c, _ in data)
            counts = np.zeros((length, 4))
            for base, col, val in data:
                counts[col - 1, "ACGT".index(base.upper())] = val
            p = counts + pseudocount
            motifs.append(Motif(row[3], f"{row[1]}.{row[2]}", p / p.sum(1, keepdims=True)))
    finally:
        con.close()
    return motifs
