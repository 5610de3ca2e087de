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

import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seqpipe.errors import SeqpipeError

SCHEMA_VERSION = 1
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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_stale_temporaries(path: Path) -> None:
    """Temporary and old store folders left by writers that died (their pid is gone)."""
    for p in path.parent.glob(f".{path.name}.*-*"):
        m = re.match(rf"\.{re.escape(path.name)}\.(?:tmp|old)-(\d+)", p.name)
        if m and p.is_dir() and not _alive(int(m.group(1))):
            shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StoreWriter:
    """Streams arrays into a new prepared store and publishes it atomically on ``commit``.

    Use as a context manager: leaving the block with an exception removes the temporary
    directory and leaves any previous store at ``path`` untouched.
    """

    def __init__(self, path: str | Path, domain: str):
        self.path = Path(path)
        self.domain = domain
        # folders made for the store, innermost first: removed again on abort, so a failed (streamed) build
        # leaves nothing behind
        self._made = [d for d in self.path.absolute().parents if not d.exists()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and not is_store(self.path) and (not self.path.is_dir() or any(self.path.iterdir())):
            raise SeqpipeError(
                "refusing to replace a folder that is not a seqpipe prepared store (no meta.json "
                "with a schema_version)",
                where=self.path,
                fix="point data.prepared_dir at a new or seqpipe-made folder",
            )
        _remove_stale_temporaries(self.path)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.tmp-{os.getpid()}-", dir=self.path.parent))
        os.chmod(self._tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; the published store gets the umask
        self._files: dict[str, Any] = {}
        self._arrays: dict[str, dict[str, Any]] = {}
        self._index: dict[str, np.ndarray] | None = None
        self._committed = False

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._committed:
            self.abort()

    def append(self, name: str, chunk: np.ndarray) -> int:
        """Append rows to array ``name``; returns the row offset where the chunk starts."""
        chunk = np.ascontiguousarray(chunk)
        info = self._arrays.get(name)
        if info is None:
            info = {"dtype": chunk.dtype.str, "row_shape": list(chunk.shape[1:]), "rows": 0}
            self._arrays[name] = info
            self._files[name] = open(self._tmp / f"{name}.bin", "wb")
        elif chunk.dtype.str != info["dtype"] or list(chunk.shape[1:]) != info["row_shape"]:
            raise SeqpipeError(
                f"array '{name}' got a chunk of {chunk.dtype}{list(chunk.shape[1:])}, "
                f"expected {info['dtype']}{info['row_shape']}",
                where=self.path,
                fix="every chunk of one array must share dtype and row shape",
            )
        start = info["rows"]
        self._files[name].write(chunk.tobytes())
        info["rows"] += len(chunk)
        return start

    def rows(self, name: str) -> int:
        return self._arrays[name]["rows"] if name in self._arrays else 0

    def set_index(self, **columns: Iterable) -> None:
        """One row a record. ``offset``, ``length`` and ``split`` (0/1/2) are required."""
        cols = {k: np.asarray(v) for k, v in columns.items()}
        for required in ("offset", "length", "split"):
            if required not in cols:
                raise SeqpipeError(f"index lacks column '{required}'", where=self.path)
        n = {len(v) for v in cols.values()}
        if len(n) != 1:
            raise SeqpipeError(f"index columns differ in length: {sorted(n)}", where=self.path)
        self._index = cols

    def commit(self, meta: dict[str, Any]) -> Path:
        """Write index and meta.json, then swap the temporary directory into place."""
        if self._index is None:
            raise SeqpipeError("store has no index", where=self.path, fix="call set_index() first")
        for f in self._files.values():
            f.close()
        np.savez(self._tmp / "index.npz", **self._index)
        full_meta = {
            "schema_version": SCHEMA_VERSION,
            "domain": self.domain,
            **meta,
            "arrays": {
                name: {"dtype": i["dtype"], "shape": [i["rows"], *i["row_shape"]]} for name, i in self._arrays.items()
            },
            "records": int(len(self._index["offset"])),
        }
        with open(self._tmp / "meta.json", "w") as f:
            json.dump(full_meta, f, indent=2, sort_keys=True, default=_json_default)
        old = None
        if self.path.exists():
            old = self.path.with_name(f".{self.path.name}.old-{os.getpid()}")
            os.replace(self.path, old)
        os.replace(self._tmp, self.path)
        self._committed = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.path

    def abort(self) -> None:
        for f in self._files.values():
            f.close()
        shutil.rmtree(self._tmp, ignore_errors=True)
        for d in self._made:
            try:
                d.rmdir()
            except OSError:  # not empty (someone else wrote there) or gone: keep the rest
                break


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o)}")


@dataclass
class PreparedStore:
    """A prepared dataset opened read-only: arrays are memory-mapped, never copied per process."""

    path: Path
    meta: dict[str, Any]
    index: dict[str, np.ndarray]
    arrays: dict[str, np.ndarray] = field(repr=False)

    @classmethod
    def open(cls, path: str | Path) -> PreparedStore:
        """Open a store; a missing, partial or corrupt one is a SeqpipeError naming the file (never a traceback)."""
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
        return cls(path=path, meta=meta, index=index, arrays=arrays)

    def records(self, split: str) -> np.ndarray:
        """Row numbers of the records in ``split``."""
        return np.flatnonzero(self.index["split"] == SPLIT_CODE[split])


def _plain(value: Any) -> Any:
    """JSON round trip: what a value looks like once recorded in meta.json (tuples -> lists, Paths -> str)."""
    return json.loads(json.dumps(value, sort_keys=True, default=_json_default))


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
