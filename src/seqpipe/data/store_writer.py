"""Writing a prepared store: arrays streamed into a temporary sibling folder, published whole on commit.

An interrupted preprocess leaves the previous store or nothing (seqpipe.io builds aside and swaps in).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from seqpipe import io
from seqpipe.data.store_format import SCHEMA_VERSION, is_store, json_default
from seqpipe.errors import SeqpipeError


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
        self._tmp = io.temp_dir(self.path)
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
            info = {"dtype": chunk.dtype.str, "row_shape": list(chunk.shape[1:]), "rows": 0, "hash": hashlib.sha256()}
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
        data = chunk.reshape(-1).view(np.uint8)  # the bytes as written, hashed on the way (no second pass)
        self._files[name].write(data)
        info["hash"].update(data)
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
                name: {"dtype": i["dtype"], "shape": [i["rows"], *i["row_shape"]], "sha256": i["hash"].hexdigest()}
                for name, i in self._arrays.items()
            },
            "records": int(len(self._index["offset"])),
        }
        with open(self._tmp / "meta.json", "w") as f:
            json.dump(full_meta, f, indent=2, sort_keys=True, default=json_default)
        io.publish_dir(self._tmp, self.path)
        self._committed = True
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
