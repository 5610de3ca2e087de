"""The code a DVC stage depends on: every module of the project it imports, found by reading the source.

seqpipe's own files and a domain's outside seqpipe (``domain: ecg_beats``, a package of the user's project) alike;
paths are relative to the project root (the working directory, where dvc.yaml lives). A file outside it (an
installed package, the standard library, a virtual environment inside the project) is no dependency: DVC tracks
the project's files.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent  # src/seqpipe


def project_root() -> Path:
    return Path.cwd().resolve()


def _in_project(path: Path) -> bool:
    root = project_root()
    installs = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    return path.is_relative_to(root) and not any(path.is_relative_to(p) for p in installs if p != root)


@cache
def _locations(top: str) -> tuple[Path, ...]:
    """Where the top-level module ``top`` lives: its package folder(s) or its one file (found, not imported)."""
    if top == "seqpipe":
        return (PACKAGE,)
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return ()
    if spec is None:
        return ()
    if spec.submodule_search_locations:
        return tuple(Path(p).resolve() for p in spec.submodule_search_locations)
    return (Path(spec.origin).resolve(),) if spec.origin and spec.origin.endswith(".py") else ()


def module_file(module: str) -> Path | None:
    """The source file of ``module`` if it lies in the project, else None."""
    top, *rest = module.split(".")
    for loc in _locations(top):
        if loc.suffix == ".py":  # a one-file top-level module
            cands = [] if rest else [loc]
        else:
            rel = Path(*rest) if rest else None
            cands = [loc / "__init__.py"] if rel is None else [loc / rel.with_suffix(".py"), loc / rel / "__init__.py"]
        for cand in cands:
            if cand.exists() and _in_project(cand):
                return cand
    return None


def imported_modules(path: Path, package: str = "") -> set[str]:
    """Modules a file imports anywhere (top level or inside functions); relative imports are resolved
    against ``package``, the package the file belongs to."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            if not base:
                continue
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names if module_file(f"{base}.{a.name}"))
    return found


def import_closure(roots: list[str]) -> list[str]:
    """Source files (project-relative) of ``roots`` and every project module they import, with the package
    ``__init__`` files that importing them runs. The CLI is a leaf: a stage runs one of its branches, and
    each branch's modules are roots here."""
    seen: set[Path] = set()
    todo = list(roots)
    while todo:
        mod = todo.pop()
        parts = mod.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
            name = ".".join(parts[:i])
            f = module_file(name)
            if f is None or f in seen:
                continue
            seen.add(f)
            if name != "seqpipe.cli":
                todo.extend(imported_modules(f, name if f.name == "__init__.py" else name.rpartition(".")[0]))
    root = project_root()
    return sorted(str(f.relative_to(root)) for f in seen)


def raw_module(cmd: str) -> str | None:
    m = re.search(r"-m\s+([\w.]+)", cmd)
    return m.group(1) if m else None


def clear_cache() -> None:
    """Forget where modules live (read again from the current sys.path)."""
    _locations.cache_clear()
