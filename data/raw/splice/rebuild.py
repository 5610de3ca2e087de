"""Rebuild data/raw/splice/splice.csv from Debian's r-cran-mlbench (documentation; not run by the pipeline).

The UCI primate splice-junction set (StatLog version, 3,186 x 60 bp) ships in the R package mlbench as
``DNA.rda``: a ``Class`` column (ei, ie, n) and 180 binary columns V1..V180, three a base, position by
position: (1,0,0)=A, (0,1,0)=C, (0,0,1)=G, (0,0,0)=T. This script decodes them back to bases and writes
``id,sequence,label`` rows (labels upper-case as in the UCI files: EI, IE, N; id = mlbench's row name,
prefixed ``dna``), in mlbench's row order. It checks what it can: the shape, that every triple is one of
the four codes, and the known donor signal (nearly every EI sequence has GT at positions 31-32).

    apt-get update && apt-get install -y r-cran-mlbench
    pip install --target /tmp/pyreadr pyreadr          # outside the project venv
    PYTHONPATH=/tmp/pyreadr .venv/bin/python data/raw/splice/rebuild.py \
        --rda /usr/lib/R/site-library/mlbench/data/DNA.rda --out data/raw/splice/splice.csv

The output is byte-identical from run to run (its sha256 is printed and recorded in README.md).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
from pathlib import Path

import numpy as np

CODES = {(1, 0, 0): "A", (0, 1, 0): "C", (0, 0, 1): "G", (0, 0, 0): "T"}
LABELS = {"ei": "EI", "ie": "IE", "n": "N"}


def decode(bits: np.ndarray) -> list[str]:
    """(n, 180) 0/1 -> n strings of 60 bases; any other triple is an error naming the row and position."""
    n, width = bits.shape
    if width % 3:
        raise ValueError(f"{width} binary columns is not three a base")
    triples = bits.reshape(n, width // 3, 3)
    out = []
    for i, row in enumerate(triples):
        bases = []
        for j, t in enumerate(row):
            key = tuple(int(v) for v in t)
            if key not in CODES:
                raise ValueError(f"row {i + 1}, position {j + 1}: bits {key} are not a base code")
            bases.append(CODES[key])
        out.append("".join(bases))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rda", default="/usr/lib/R/site-library/mlbench/data/DNA.rda")
    ap.add_argument("--out", default=str(Path(__file__).with_name("splice.csv")))
    args = ap.parse_args()

    import pyreadr

    df = pyreadr.read_r(args.rda)["DNA"]
    if df.shape != (3186, 181):
        raise SystemExit(f"expected 3186 x 181 (Class + 180 bits), got {df.shape}")
    bit_cols = [f"V{i}" for i in range(1, 181)]
    bits = df[bit_cols].astype(str).astype(int).to_numpy()
    seqs = decode(bits)
    labels = [LABELS[str(c)] for c in df["Class"]]
    ids = [f"dna{r}" for r in df.index]
    ei = [s for s, y in zip(seqs, labels) if y == "EI"]
    gt = sum(s[30:32] == "GT" for s in ei)
    print(f"{len(seqs)} sequences; classes { {c: labels.count(c) for c in sorted(set(labels))} }; "
          f"EI with GT at 31-32: {gt}/{len(ei)}")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "sequence", "label"])
    w.writerows(zip(ids, seqs, labels))
    data = buf.getvalue().encode()
    Path(args.out).write_bytes(data)
    print(f"wrote {args.out}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
