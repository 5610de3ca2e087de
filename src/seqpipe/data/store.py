"""The prepared-dataset format that every domain writes and every datamodule reads.

A prepared store is a directory::

    meta.json           schema version, domain, fingerprint, statistics, array dtypes/shapes
    <array>.bin         raw little-endian arrays, opened with np.memmap (never loaded whole)
    index.npz           one row a record: offset, length, split (+ label, group, ... per domain)

Records are contiguous slices ``data[offset:offset+length]`` of the flat arrays: a text split, a
ticker's date range, one audio clip, one DNA sequence. Samples are cut from records by index
arithmetic (seqpipe.data.windows), so nothing is copied or materialized.

Writes are atomic: everything goes to a temporary sibling directory that replaces the target by
rename only once complete. An interrupted preprocess leaves the previous store or nothing.
"""

from __future__ import annotations

import json
import logging
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seqpipe.data.store_format import (  # noqa: F401 -- the store's public names, importable from here
    SCHEMA_VERSION,
    SPLIT_CODE,
    SPLITS,
    VERIFY_AT_OPEN_BYTES,
    array_hash_matches,
    check_not_inside_source,
    fingerprint,
    is_store,
    json_default,
)
from seqpipe.data.store_writer import StoreWriter  # noqa: F401
from seqpipe.errors import SeqpipeError

logger = logging.getLogger(__name__)


@dataclass
class PreparedStore:
    """A prepared dataset opened read-only: arrays are memory-mapped, never copied per process."""

    path: Path
    meta: dict[str, Any]
    index: dict[str, np.ndarray]
    arrays: dict[str, np.ndarray] = field(repr=False)

    @classmethod
    def open(cls, path: str | Path, verify: bool | None = None) -> PreparedStore:
        """Open a store; a missing, partial or corrupt one is a SeqpipeError naming the file (never a traceback).

        ``verify``: compare every array with the SHA-256 meta.json recorded (None: only a store of at most
        VERIFY_AT_OPEN_BYTES, where that is cheap; `seqpipe verify` checks any size)."""
        path = Path(path)
        meta_file = path / "meta.json"
        if not meta_file.exists():
            raise SeqpipeError(
                "no prepared dataset here (meta.json missing)",
                where=path,
                fix="run `seqpipe preprocess --config <experiment.yaml>` (or `dvc repro`) first",
            )
        rebuild = f"delete {path} and rerun `seqpipe preprocess --config <experiment.yaml>` (or `dvc repro`)"
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SeqpipeError(
                f"corrupt prepared store: meta.json does not read as JSON ({e})", where=meta_file, fix=rebuild
            ) from e
        if not isinstance(meta, dict):
            raise SeqpipeError("corrupt prepared store: meta.json is not a JSON object", where=meta_file, fix=rebuild)
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise SeqpipeError(
                f"prepared with schema version {meta.get('schema_version')}, this seqpipe reads {SCHEMA_VERSION}",
                where=path,
                fix="rerun the preprocess stage",
            )
        missing = [k for k in ("domain", "arrays", "records") if k not in meta]
        if missing or not isinstance(meta["arrays"], dict):
            raise SeqpipeError(
                f"corrupt prepared store: meta.json lacks {missing or ['arrays']}", where=meta_file, fix=rebuild
            )
        index_file = path / "index.npz"
        try:
            with np.load(index_file, allow_pickle=False) as z:
                index = {k: z[k] for k in z.files}
        except FileNotFoundError as e:
            raise SeqpipeError("corrupt prepared store: index.npz is missing", where=index_file, fix=rebuild) from e
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
            raise SeqpipeError(
                f"corrupt prepared store: index.npz does not read ({type(e).__name__}: {e})",
                where=index_file,
                fix=rebuild,
            ) from e
        lens = {k: len(v) for k, v in index.items()}
        if not {"offset", "length", "split"} <= set(index) or set(lens.values()) != {meta["records"]}:
            raise SeqpipeError(
                f"corrupt prepared store: index columns {lens} do not match the {meta['records']} records in meta.json",
                where=index_file,
                fix=rebuild,
            )
        arrays = {}
        for name, info in meta["arrays"].items():
            try:
                shape, dtype = tuple(int(x) for x in info["shape"]), np.dtype(info["dtype"])
            except (KeyError, TypeError, ValueError) as e:
                raise SeqpipeError(
                    f"corrupt prepared store: array '{name}' has no valid dtype/shape in meta.json",
                    where=meta_file,
                    fix=rebuild,
                ) from e
            if shape[0] == 0:
                arrays[name] = np.zeros(shape, dtype=dtype)
                continue
            bin_file = path / f"{name}.bin"
            want = int(np.prod(shape)) * dtype.itemsize
            have = bin_file.stat().st_size if bin_file.is_file() else None
            if have != want:
                raise SeqpipeError(
                    "corrupt prepared store: "
                    + (
                        f"{name}.bin is missing"
                        if have is None
                        else f"{name}.bin holds {have} bytes, meta.json declares {want} ({shape} x {dtype})"
                    ),
                    where=bin_file,
                    fix=rebuild,
                )
            arrays[name] = np.memmap(bin_file, dtype=dtype, mode="r", shape=shape)
        if verify or (verify is None and sum(a.nbytes for a in arrays.values()) <= VERIFY_AT_OPEN_BYTES):
            check_hashes(path, meta, rebuild)
        return cls(path=path, meta=meta, index=index, arrays=arrays)

    def records(self, split: str) -> np.ndarray:
        """Row numbers of the records in ``split``."""
        return np.flatnonzero(self.index["split"] == SPLIT_CODE[split])


def check_hashes(path: Path, meta: dict[str, Any], fix: str) -> None:
    """Refuse an array whose bytes changed after the store was written (a same-size edit passes the size check)."""
    for name, info in meta["arrays"].items():
        if int(info["shape"][0]) == 0:
            continue
        ok = array_hash_matches(path, name, info)
        if ok is None:
            logger.debug("%s: %s.bin has no recorded SHA-256 (an older store): not checked", path, name)
        elif not ok:
            raise SeqpipeError(
                f"corrupt prepared store: {name}.bin's bytes differ from the SHA-256 meta.json recorded when it "
                "was written",
                where=path / f"{name}.bin",
                fix=fix,
            )


def _plain(value: Any) -> Any:
    """JSON round trip: what a value looks like once recorded in meta.json (tuples -> lists, Paths -> str)."""
    return json.loads(json.dumps(value, sort_keys=True, default=json_default))


def check_settings(meta: dict[str, Any], expected: dict[str, Any], where: str | Path) -> None:
    """Refuse a store prepared with other preprocessing settings than ``expected`` (what the config asks for).

    ``meta["settings"]`` is what preprocess recorded; every key of ``expected`` is compared after a JSON
    round trip. A store without recorded settings (older seqpipe) passes. The error names every differing
    key with both values.
    """
    recorded = meta.get("settings")
    if recorded is None:
        return
    want = _plain(expected)
    missing = object()
    diff = [k for k in sorted(want) if recorded.get(k, missing) != want[k]]
    if diff:
        parts = [
            f"prepared with {k}={recorded.get(k, '(not recorded)')!r}, this config asks for {want[k]!r}" for k in diff
        ]
        raise SeqpipeError(
            "; ".join(parts) + f" (differing: {', '.join(diff)})",
            where=where,
            fix="rerun `seqpipe preprocess` (or `dvc repro`) with this config, or point data.prepared_dir "
            "at a store built with it",
        )
