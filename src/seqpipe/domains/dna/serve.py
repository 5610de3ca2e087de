"""Serving a DNA classifier: a sequence -> the predicted class and the class probabilities.

The rows are written as a temporary FASTA file and read back by ``task.predict``: the same input rules as the
training data (alphabet, U as T, length limits, from the checkpoint) and the same strand handling (both strands
averaged only for a model trained with reverse-complement augmentation).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from seqpipe.domains.dna.task import predict
from seqpipe.errors import SeqpipeError

OUTPUTS = ("predicted", "probabilities", "strands")


def serve(model: torch.nn.Module, df: pd.DataFrame) -> pd.DataFrame:
    """One row a sequence: ``predicted``, ``probabilities`` ({class: p}) and ``strands`` (both / forward)."""
    if "sequence" not in df:
        raise SeqpipeError(
            f"a DNA model needs a `sequence` column, got {list(df.columns)}",
            where="request",
            fix='e.g. {"dataframe_records": [{"sequence": "ACGTTGCA..."}]}',
        )
    lines = []
    for i, seq in enumerate(df["sequence"]):
        if seq is None or (np.ndim(seq) == 0 and bool(pd.isna(seq))):
            raise SeqpipeError(f"row {i} has no sequence", where="request")
        lines += [f">row{i}", "".join(str(seq).split())]
    with tempfile.TemporaryDirectory(prefix="seqpipe-serve-") as tmp:
        fasta = Path(tmp) / "request.fa"
        fasta.write_text("\n".join(lines) + "\n")
        by_id = {r["id"]: r for r in predict(model, [str(fasta)])}
    skipped = [i for i in range(len(df)) if f"row{i}" not in by_id]
    if skipped:
        raise SeqpipeError(f"rows {skipped} were skipped by the model's input rules (empty, or too long?)")
    return pd.DataFrame({k: [by_id[f"row{i}"][k] for i in range(len(df))] for k in OUTPUTS})


def serve_example(info: dict[str, Any]) -> pd.DataFrame:
    """Two random sequences within the model's length limits."""
    rules = info.get("rules") or {}
    n = min(120, int(rules.get("max_len") or 120))
    rng = np.random.default_rng(0)
    return pd.DataFrame({"sequence": ["".join(rng.choice(list("ACGT"), n)) for _ in range(2)]})
