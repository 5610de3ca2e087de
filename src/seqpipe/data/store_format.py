"""The prepared store's format on disk, shared by its writer and its reader (seqpipe.data.store).

Schema version, split codes, the source fingerprint, and what a store looks like once written
(``is_store``, the JSON encoding of meta.json), and the content hash of each array that meta.json records
(``sha256`` beside its dtype and shape, computed while it was written) and readers compare.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from seqpipe.errors import SeqpipeError

SCHEMA_VERSION = 1
# a store whose arrays hold at most this many bytes is hashed whenever it is opened (about 0.1 s at this size);
# a larger one only by `seqpipe verify`, so a big store's stage does not pay a full read before it starts
VERIFY_AT_OPEN_BYTES = 64 << 20
SPLITS = ("train", "val", "test")
SPLIT_CODE = {name: code for code, name in enumerate(SPLITS)}


def fingerprint(paths: Iterable[str | Path], extra: Any = None, chunk_bytes: int = 1 << 20) -> str:
    """sha256 over source files' bytes (streamed) and the preprocessing parameters."""
    h = hashlib.sha256()
    for p in sorted(str(p) for p in paths):
        h.update(Path(p).name.encode())
        with open(p, "rb") as f:
            while chunk := f.read(chunk_bytes):
                h.update(chunk)
    h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            h.update(chunk)
    return h.hexdigest()


def array_hash_matches(path: Path, name: str, info: dict[str, Any]) -> bool | None:
    """Whether ``<name>.bin`` still holds the bytes whose SHA-256 meta.json recorded; None where none is recorded
    (a store written before seqpipe recorded them)."""
    recorded = info.get("sha256") if isinstance(info, dict) else None
    if not isinstance(recorded, str):
        return None
    return file_sha256(path / f"{name}.bin") == recorded


def is_store(path: Path) -> bool:
    """Whether ``path`` holds a seqpipe prepared store (its meta.json says so)."""
    try:
        return "schema_version" in json.loads((path / "meta.json").read_text())
    except (OSError, ValueError, TypeError):
        return False


def check_not_inside_source(sources: Any, prepared_dir: str | Path) -> None:
    """Rebuilding replaces prepared_dir: it must never be the raw source or a folder holding it."""
    target = Path(prepared_dir).resolve()
    for src in sources if isinstance(sources, (list, tuple)) else [sources]:
        if isinstance(src, str) and Path(src).exists():
            s = Path(src).resolve()
            if s == target or target in s.parents:
                raise SeqpipeError(
                    f"data.prepared_dir {prepared_dir} is the source {src} or holds it: "
                    "preprocessing would replace the raw data",
                    where=prepared_dir,
                    fix="point data.prepared_dir at a folder of its own, e.g. data/prepared/<name>",
                )


def json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o)}")
