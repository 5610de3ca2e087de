"""One exception type for everything a user can get wrong, with the place and the fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


class SeqpipeError(ValueError):
    """A user-facing error that names what is wrong, where, and what to do about it.

    ``where`` is a file, a record id, a row or a character; ``fix`` is one sentence a user can act on.
    """

    def __init__(self, problem: str, *, where: str | Path | None = None, fix: str | None = None):
        self.problem = problem
        self.where = str(where) if where is not None else None
        self.fix = fix
        parts = [f"{self.where}: {problem}" if self.where else problem]
        if fix:
            parts.append(f"Fix: {fix}")
        super().__init__(" ".join(parts))


def exit_code(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a command-line ``main``: a SeqpipeError, or a missing optional package, becomes one line on stderr
    and exit status 2 (every other exception stays a traceback: a bug, not a user's mistake)."""
    import sys

    try:
        return main(argv)
    except SeqpipeError as e:
        print(f"seqpipe: error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:  # an optional package this command needs is not installed
        if (err := missing_extra(e)) is None:
            raise
        print(f"seqpipe: error: {err}", file=sys.stderr)
        return 2


# Optional packages -> the pip extra that installs them (pyproject.toml [project.optional-dependencies]): the
# pipeline's here; each domain adds its own when it is declared (seqpipe.domain.Domain.packages).
EXTRA_OF = {
    "mlflow": "pipeline",
    "dvc": "pipeline",
    "sklearn": "pipeline",
    "matplotlib": "pipeline",
}


def missing_extra(error: ImportError) -> SeqpipeError | None:
    """The one-line error for an optional package that is not installed (None if ``error`` is another one)."""
    top = (getattr(error, "name", None) or "").split(".")[0]
    extra = EXTRA_OF.get(top)
    if extra is None:
        return None
    return SeqpipeError(
        f"this needs the '{top}' package, which seqpipe's core install leaves out",
        fix=f"pip install 'seqpipe[{extra}]' (or 'seqpipe[all]')",
    )
