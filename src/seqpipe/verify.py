"""`seqpipe verify PATH...`: compare stores and checkpoints with the SHA-256 hashes recorded when they were written.

A same-size edit of a store's ``.bin`` passes every size check and a flipped byte in a checkpoint may still load,
yet both change the numbers. A prepared store's meta.json records each array's SHA-256 (hashed while writing), a
model folder's run.json each published checkpoint's. A PATH is a store, a model folder, a ``.ckpt`` file, or a
folder of those (e.g. ``data/prepared`` or ``models``). One line a thing checked: ``ok``, ``MISMATCH`` or
``unchecked`` (nothing recorded: an older store or a checkpoint outside a model folder); exit status 1 if
anything mismatched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from seqpipe.data.store import array_hash_matches, is_store
from seqpipe.errors import SeqpipeError
from seqpipe.models.loading import CHECKSUMS, file_sha256, recorded_hashes


def check_store(path: Path) -> Iterator[tuple[str, Path, str]]:
    """(status, file, detail) for every array of a prepared store."""
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    for name, info in sorted((meta.get("arrays") or {}).items()):
        bin_file = path / f"{name}.bin"
        if not bin_file.is_file():
            yield "MISMATCH", bin_file, "missing"
            continue
        ok = array_hash_matches(path, name, info)
        if ok is None:
            yield "unchecked", bin_file, "meta.json records no SHA-256 (written by an older seqpipe)"
        else:
            yield (
                ("ok", bin_file, "sha256 matches meta.json")
                if ok
                else (
                    "MISMATCH",
                    bin_file,
                    "bytes differ from the SHA-256 in meta.json: rebuild the store (`seqpipe preprocess`)",
                )
            )


def check_checkpoint(ckpt: Path) -> tuple[str, Path, str]:
    """(status, file, detail) for one checkpoint against its model folder's checksums.json."""
    recorded = recorded_hashes(ckpt.parent)
    if ckpt.name not in recorded:
        return "unchecked", ckpt, f"no SHA-256 recorded for it in {CHECKSUMS} beside it"
    if file_sha256(ckpt) != recorded[ckpt.name]:
        return "MISMATCH", ckpt, f"bytes differ from the SHA-256 in {CHECKSUMS}: retrain (`seqpipe fit`) or restore it"
    return "ok", ckpt, f"sha256 matches {CHECKSUMS}"


def check_path(path: Path) -> Iterator[tuple[str, Path, str]]:
    """Everything ``path`` holds that carries a recorded hash: a store, a model folder, a checkpoint, or a folder
    of stores and model folders."""
    if not path.exists():
        raise SeqpipeError("no such file or folder", where=path, fix="pass a prepared store, a model folder or a .ckpt")
    if path.is_file():
        if path.suffix != ".ckpt":
            raise SeqpipeError("not a checkpoint (.ckpt)", where=path, fix="pass a store or model folder, or a .ckpt")
        yield check_checkpoint(path)
    elif is_store(path):
        yield from check_store(path)
    elif (path / "run.json").is_file():
        for name in sorted(recorded_hashes(path)):
            yield check_checkpoint(path / name)
    else:
        inner = [p for p in sorted(path.iterdir()) if p.is_dir() and (is_store(p) or (p / "run.json").is_file())]
        if not inner:
            raise SeqpipeError(
                "neither a prepared store nor a model folder, nor a folder holding them",
                where=path,
                fix="pass e.g. data/prepared/<name>, models/<name>, models/<name>/best.ckpt, data/prepared or models",
            )
        for p in inner:
            yield from check_path(p)


def verify(paths: list[str]) -> int:
    """Print one line a file checked; 1 if any mismatched, else 0."""
    bad = 0
    for p in paths:
        for status, file, detail in check_path(Path(p)):
            bad += status == "MISMATCH"
            print(f"{status:<9} {file}: {detail}", flush=True)
    return 1 if bad else 0
