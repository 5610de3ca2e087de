"""Serving an audio classifier: a WAV (a path on the server, or its bytes in base64) -> label and probabilities.

Each row gives ``path`` or ``audio``; the bytes are written to a temporary file so both go through
``task.predict``, which featurizes a file exactly as preprocess did (log-mel settings and train normalization
from the checkpoint).
"""

from __future__ import annotations

import base64
import binascii
import io
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from seqpipe.domains.audio.task import predict
from seqpipe.errors import SeqpipeError


def serve(model: torch.nn.Module, df: pd.DataFrame) -> pd.DataFrame:
    """One row a clip: ``label`` and ``probabilities`` ({class: p}, summing to 1 over the model's classes)."""
    with tempfile.TemporaryDirectory(prefix="seqpipe-serve-") as tmp:
        paths = [_clip_path(row, i, Path(tmp)) for i, row in enumerate(df.to_dict("records"))]
        results = predict(model, paths)
    return pd.DataFrame({k: [r[k] for r in results] for k in ("label", "probabilities")})


def _given(value: Any) -> bool:
    return value is not None and not (np.ndim(value) == 0 and bool(pd.isna(value))) and value != ""


def _clip_path(row: dict[str, Any], i: int, tmp: Path) -> str:
    path, audio = row.get("path"), row.get("audio")
    if _given(path) == _given(audio):
        raise SeqpipeError(
            f"row {i}: give one of `path` (a WAV file on the server) or `audio` (the WAV's bytes in base64)",
            where="request",
        )
    if _given(path):
        return str(path)
    try:
        data = audio if isinstance(audio, bytes) else base64.b64decode(str(audio), validate=True)
    except (binascii.Error, ValueError) as e:
        raise SeqpipeError(f"row {i}: `audio` is not base64 ({e})", where="request", fix="base64-encode the WAV") from e
    out = tmp / f"clip{i}.wav"
    out.write_bytes(data)
    return str(out)


def serve_example(info: dict[str, Any]) -> pd.DataFrame:
    """A 0.3 s tone as a base64 WAV at the model's sample rate (the `path` column: a file on the server)."""
    import soundfile as sf

    rate = int(info["features"]["sample_rate"])
    t = np.arange(int(0.3 * rate)) / rate
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return pd.DataFrame(
        {"path": pd.Series([None], dtype="str"), "audio": [base64.b64encode(buf.getvalue()).decode("ascii")]}
    )
