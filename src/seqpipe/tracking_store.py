"""The project's own sqlite tracking store: created once under a lock, and relocatable.

- Two or three fits started at once in a project without mlruns/ yet all create the store's tables, and all but
  one crash (``table registered_models already exists``): ``init_locked`` creates them under a file lock.
- The store records absolute artifact locations (``/old/project/mlruns/1/...``): a copied or moved
  project would write its new runs' files under the old one. ``relocate`` re-points every location under the old
  project's ``mlruns/`` to this project's (the copy holds the same files under the same relative paths).
Only the default store (no $MLFLOW_TRACKING_URI) is touched: a store the user points at is the user's.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

# (table, column) pairs holding artifact URIs in MLflow's sqlite schema (logged_models since MLflow 3)
LOCATIONS = (("experiments", "artifact_location"), ("runs", "artifact_uri"), ("logged_models", "artifact_location"))


@contextlib.contextmanager
def store_lock(mlruns: Path) -> Iterator[None]:
    """An exclusive lock on the project's store (mlruns/.store.lock), across processes."""
    mlruns.mkdir(parents=True, exist_ok=True)
    with open(mlruns / ".store.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def init_locked(uri: str, mlruns: Path) -> None:
    """Open the store once under the lock, so only one process creates a new store's tables."""
    import mlflow

    with store_lock(mlruns):
        mlflow.MlflowClient(uri).search_experiments(max_results=1)


def _old_root(location: str, new_mlruns: Path) -> tuple[str, str] | None:
    """(the ``.../mlruns`` prefix of ``location``, what it becomes here) when it is another project's, else None.
    MLflow records a plain path (``/proj/mlruns/1/<run>/artifacts``) or a ``file://`` URI."""
    i = location.find("/mlruns/")
    if i < 0 and location.endswith("/mlruns"):
        i = len(location) - len("/mlruns")
    if i < 0 or (location.startswith("file:") and not location.startswith("file:///")):
        return None
    old = location[: i + len("/mlruns")]
    new = new_mlruns.as_uri() if old.startswith("file:") else str(new_mlruns)
    return (old, new) if old != new else None


def relocate(db: Path, new_mlruns: Path) -> int:
    """Re-point the store's artifact locations under another project's mlruns/ to ``new_mlruns`` (a copy of the
    project holds the same files under the same relative paths); returns how many rows changed."""
    if not db.exists():
        return 0
    con = sqlite3.connect(db, timeout=60)
    try:
        tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
        moves = set()
        for table, col in LOCATIONS:
            if table in tables:
                for (loc,) in con.execute(f"select distinct {col} from {table}"):  # noqa: S608
                    move = _old_root(loc or "", new_mlruns)
                    if move:
                        moves.add(move)
        changed = 0
        with con:
            for old, new in moves:
                for table, col in LOCATIONS:
                    if table in tables:
                        cur = con.execute(
                            f"update {table} set {col} = ? || substr({col}, ?) "  # noqa: S608
                            f"where {col} = ? or {col} like ? escape '\\'",
                            (new, len(old) + 1, old, _like_prefix(old + "/")),
                        )
                        changed += cur.rowcount
        for old, new in moves:
            log.warning("the project moved: MLflow artifact locations under %s now point to %s", old, new)
        return changed
    finally:
        con.close()


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
