"""Generator output folders: built aside, swapped in whole, and only over a folder a generator wrote.

A generator (``python -m seqpipe.sources.<name> --out DIR``) writes into a temporary sibling of DIR, adds
``generation.json`` (which generator, with which arguments) and then swaps it in: the old folder is
renamed away, the new one renamed in, the old one deleted, so a crash leaves one of them whole. DIR is
replaced only if it is missing, empty, or holds the ``generation.json`` of a seqpipe generator; never the
working folder, the installed package or a folder above either (``--out .`` must not wipe a project).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from seqpipe import io
from seqpipe.errors import SeqpipeError

GENERATION_FILE = "generation.json"


def is_generated(path: Path) -> bool:
    """Whether ``path`` is a folder a seqpipe generator wrote (its generation.json says so)."""
    try:
        return str(json.loads((path / GENERATION_FILE).read_text()).get("generator", "")).startswith("seqpipe.")
    except (OSError, ValueError, AttributeError):
        return False


def check_out_dir(out_dir: str | Path) -> Path:
    """Refuse an ``--out`` folder a generator must not replace; returns it as a Path."""
    out = Path(out_dir)
    resolved = out.resolve()
    protected = [Path.cwd().resolve(), Path(__file__).resolve().parents[1]]  # the project, the package
    if any(resolved == p or resolved in p.parents for p in protected):
        raise SeqpipeError(
            "refusing to replace the working folder, the seqpipe package or a folder above them",
            where=out,
            fix="pass --out a dedicated folder such as data/raw/<name>",
        )
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise SeqpipeError("--out exists and is not a folder", where=out, fix="pass --out a new folder")
    if out.is_dir() and any(out.iterdir()) and not is_generated(out):
        raise SeqpipeError(
            f"refusing to replace a folder no seqpipe generator wrote (no {GENERATION_FILE} naming one)",
            where=out,
            fix="pass --out a new folder, or empty this one yourself",
        )
    return out


class GeneratedFolder:
    """Context manager: a temporary folder (``.path``) beside ``out_dir`` that replaces it on a clean exit.

    ``generator`` and ``info`` (the arguments; more may be added to ``.info`` inside the block) go into
    generation.json. An exception removes the temporary folder and leaves ``out_dir`` as it was.
    """

    def __init__(self, out_dir: str | Path, generator: str, **info: Any):
        self.out = check_out_dir(out_dir)
        self.info: dict[str, Any] = {"generator": generator, **info}
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.path = io.temp_dir(self.out)

    def __enter__(self) -> GeneratedFolder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        (self.path / GENERATION_FILE).write_text(json.dumps(self.info, indent=2, sort_keys=True, default=str) + "\n")
        try:
            io.publish_dir(self.path, self.out)
        except BaseException:
            shutil.rmtree(self.path, ignore_errors=True)
            raise
