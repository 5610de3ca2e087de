"""Atomic writes: a reader (or a crash) sees the old file or folder or the new one, never a half.

Files go to a temporary sibling (same folder, so the rename cannot cross file systems), are flushed
and fsynced, get the permissions the user's umask gives a new file, and are renamed over the target;
any failure removes the temporary. Folders are built in a temporary sibling (``temp_dir``) and
swapped in whole (``publish_dir``): the old one renamed away, the new one renamed in, the old one
deleted, so a crash leaves one of them whole.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from seqpipe.errors import SeqpipeError


def umask() -> int:
    """The process's umask (read without changing it for good)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_with(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write`` on a binary temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as e:
        _raise_if_full(e, path)
        raise
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600; a published file gets the user's umask
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)  # never a partial file left on a full disk
        if isinstance(e, OSError):
            _raise_if_full(e, path)
        raise


class DiskFull(SeqpipeError, OSError):
    """ENOSPC/EDQUOT as a one-line seqpipe error that is still an OSError for callers that tolerate write failures."""


def _raise_if_full(error: OSError, path: Path) -> None:
    """A full disk (or quota) is the user's to fix: one line naming the file, not an OSError traceback."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        full = DiskFull(
            f"no space left on the device writing {path.name} ({os.strerror(error.errno)}); nothing partial was kept",
            where=path,
            fix="free disk space there and rerun (`seqpipe fit --resume` continues an interrupted fit)",
        )
        full.errno = error.errno
        raise full from None


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    write_with(path, lambda f: f.write(data))


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(
    path: str | Path, doc: Any, *, indent: int | None = 2, sort_keys: bool = False, default: Any = None
) -> None:
    """``json.dumps(doc, ...)`` plus a trailing newline, written atomically (the formatting is the caller's)."""
    write_text(path, json.dumps(doc, indent=indent, sort_keys=sort_keys, default=default) + "\n")


def temp_dir(final: str | Path) -> Path:
    """A new empty folder beside ``final`` (``.<name>.tmp-<pid>-*``) with the umask's permissions, to build it in."""
    final = Path(final)
    path = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-{os.getpid()}-", dir=final.parent))
    os.chmod(path, 0o777 & ~umask())  # mkdtemp makes 0700; the published folder gets the umask
    return path


def publish_dir(src: str | Path, final: str | Path, old: str | Path | None = None) -> Path:
    """Swap the finished folder ``src`` in as ``final``: old away (to ``old``, default ``.<name>.old-<pid>``),
    new in, parent fsynced, old deleted. A failed swap leaves ``src`` for the caller to resume or remove."""
    src, final = Path(src), Path(final)
    old = Path(old) if old is not None else final.with_name(f".{final.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(src, final)
    fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)
    return final


def fsync_dir(path: str | Path) -> None:
    """Make the renames inside folder ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
