"""Generator output folders: built aside, swapped in whole, and only over a folder a generator wrote.

A generator (``python -m seqpipe.sources.<name> --out DIR``) writes into a temporary sibling of DIR, adds
``generation.json`` (which generator, with which arguments) and then swaps it in: the old folder is
renamed away, the new one renamed in, the old one deleted, so a crash leaves one of them whole. DIR is
replaced only if it is missing, empty, or holds the ``generation.json`` of a seqpipe generator; never the
working folder, the installed package or a folder above either (``--out .`` must not wipe a project).
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from seqpipe import io
from seqpipe.errors import SeqpipeError, exit_code

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


# -- the generators' command lines ------------------------------------------------------------
def generator_parser(description: str, out_default: str | None, prog: str | None = None) -> argparse.ArgumentParser:
    """A generator's parser: ``--out`` (the folder it replaces, see check_out_dir) first, with its default;
    ``out_default=None`` leaves the out folder to the caller (a positional argument)."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    if out_default is not None:
        p.add_argument("--out", default=out_default)
    return p


def add_seed(p: argparse.ArgumentParser, default: int = 0) -> None:
    """``--seed``: every random draw of the generator follows from it (same seed, same bytes)."""
    p.add_argument("--seed", type=int, default=default)


def add_profile(p: argparse.ArgumentParser, help: str, choices: list[str] | None = None) -> None:
    """``--profile``: "default" or a smaller CI variant ("fast") the generator describes in ``help``."""
    p.add_argument("--profile", default="default", choices=choices, help=help)


def run_generator(main: Callable[[list[str] | None], int]) -> NoReturn:
    """``python -m`` entry point of a generator: a SeqpipeError is one line on stderr and exit status 2."""
    raise SystemExit(exit_code(main))
