"""The docs name only what exists: every `seqpipe <subcommand> --flag`, every `make <target>`, every module and every
pipelines/, docs/ and benchmarks/ path (and every relative link, anchor included) in README.md and docs/*.md.

Reads the Markdown's fenced blocks, inline code and links; checks commands against seqpipe.cli.build_parser() and
the Makefile's targets. No subprocess, so it runs in well under a second.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from seqpipe.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
INLINE = re.compile(r"`([^`]+)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
PATH = re.compile(r"(?<![\w./-])((?:pipelines|docs|benchmarks)/[\w./{},<>*-]*)")
MAKE = re.compile(r"(?<![\w-])make ([a-z][\w-]*)")
SEPARATORS = {"&&", "||", ";", "|", "&"}


def _code(text: str) -> list[str]:
    """The fenced blocks (backslash continuations joined) and the inline code spans of a page."""
    blocks = [b.replace("\\\n", " ") for b in FENCE.findall(text)]
    prose = FENCE.sub("", text)
    return blocks + [" ".join(span.split()) for span in INLINE.findall(prose)]


def _commands(snippet: str) -> list[list[str]]:
    """Each `seqpipe ...` command in a snippet, as its words from the subcommand to the end of the command."""
    found = []
    for line in snippet.splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:  # unbalanced quotes in prose-like code: plain words will do
            words = line.split()
        for i, word in enumerate(words):
            launched = word == "seqpipe" or word.endswith("/seqpipe")
            module = word in ("seqpipe", "seqpipe.cli") and i > 0 and words[i - 1] == "-m"
            if launched or module:
                rest = []
                for w in words[i + 1 :]:
                    if w in SEPARATORS:
                        break
                    rest.append(w)
                found.append(rest)
    return found


def _subcommands() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, dict(sub.choices)


def _make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*):", makefile, re.M))


def _expand(path: str) -> list[str]:
    """`pipelines/text/{rnn,lstm}.yaml` -> both paths; `pipelines/dna/base.yaml:evaluate.x` -> the file."""
    path = path.split(":")[0].rstrip(".,;")
    m = re.search(r"\{([^}]*)\}", path)
    if m is None:
        return [path]
    return [p for alt in m.group(1).split(",") for p in _expand(path[: m.start()] + alt + path[m.end() :])]


def _exists(rel: str) -> bool:
    """In the repository, or in one of the example projects (their commands run from the example's folder)."""
    return any((base / rel).exists() for base in (ROOT, *sorted((ROOT / "examples").iterdir())))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {_slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_seqpipe_commands_and_flags_exist(page: Path) -> None:
    parser, subs = _subcommands()
    bad = []
    for snippet in _code(page.read_text()):
        for words in _commands(snippet):
            if not words:
                continue
            names = re.split(r"[|/]", words[0]) if not words[0].startswith("-") else [None]
            for name in names:
                if name is not None and name not in subs:
                    bad.append(f"seqpipe {name}: no such subcommand")
                    continue
                target = parser if name is None else subs[name]
                for w in words:
                    flag = w.split("=")[0].strip(".,")
                    if re.fullmatch(r"--?[a-z][\w-]*", flag) and flag not in target._option_string_actions:
                        bad.append(f"seqpipe {name or ''} {flag}: no such flag")
    assert not bad, f"{page.name}: " + "; ".join(sorted(set(bad)))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_make_targets_exist(page: Path) -> None:
    targets = _make_targets()
    named = {t for snippet in _code(page.read_text()) for t in MAKE.findall(snippet)}
    assert named <= targets, f"{page.name} names make targets the Makefile lacks: {sorted(named - targets)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_named_paths_exist(page: Path) -> None:
    text = page.read_text()
    named = {p for snippet in _code(text) for raw in PATH.findall(snippet) for p in _expand(raw)}
    missing = sorted(p for p in named if not re.search(r"[<>*]", p) and not _exists(p))
    assert not missing, f"{page.name} names paths that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_and_anchors_resolve(page: Path) -> None:
    bad = []
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        rel = dest.relative_to(ROOT).as_posix() if dest.is_relative_to(ROOT) else str(dest)
        if not _exists(rel):
            bad.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and dest.exists() and anchor not in _anchors(dest):
            bad.append(f"{target}: no such heading")
    assert not bad, f"{page.name}: " + "; ".join(bad)


def _module_file(parts: list[str]) -> Path | None:
    base = ROOT / "src" / Path(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _resolves(dotted: str) -> bool:
    """`seqpipe.a.b` is a module, or a module's top-level name (read from its source: nothing is imported)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        file = _module_file(parts[:cut])
        if file is not None:
            rest = parts[cut:]
            if not rest:
                return True
            pattern = rf"^(?:class|def) {rest[0]}\b|^{rest[0]}\b.*="
            if len(rest) <= 2 and re.search(pattern, file.read_text(), re.M) is not None:
                return True
            return _imports(".".join(parts[:cut]), rest)  # a name a package exports on first use
    return False


def _imports(module: str, names: list[str]) -> bool:
    import importlib

    try:
        obj = importlib.import_module(module)
        for name in names:
            obj = getattr(obj, name)
    except (ImportError, AttributeError):
        return False
    return True


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_module_paths_exist(page: Path) -> None:
    """Every `seqpipe.x.y` and `src/seqpipe/...` the page names is in the tree (the layout moves; docs follow)."""
    spans = [s for snippet in _code(page.read_text()) for s in re.findall(r"(?<![\w/.])seqpipe(?:\.\w+)+", snippet)]
    files = [s for snippet in _code(page.read_text()) for s in re.findall(r"src/seqpipe/[\w/.]*\w", snippet)]
    bad = sorted({s for s in spans if not _resolves(s)} | {f for f in files if not (ROOT / f).exists()})
    assert not bad, f"{page.name} names modules that do not exist: {bad}"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    pages = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")}
    unlinked = sorted(p for p in pages if f"]({p})" not in readme)
    assert not unlinked, f"README.md links no page {unlinked}"


def test_the_checks_see_what_they_check() -> None:
    """The parsers find commands, targets and paths in the shapes the docs write them (a guard against a regex
    that silently matches nothing)."""
    snippet = "seqpipe fit --config pipelines/text/{rnn,lstm}.yaml --set a=1 && make repro JOBS=1  # seqpipe nope"
    assert _commands(snippet) == [["fit", "--config", "pipelines/text/{rnn,lstm}.yaml", "--set", "a=1"]]
    assert MAKE.findall(snippet) == ["repro"]
    assert [p for raw in PATH.findall(snippet) for p in _expand(raw)] == [
        "pipelines/text/rnn.yaml",
        "pipelines/text/lstm.yaml",
    ]
    assert _commands("torchrun -m seqpipe.cli fit --config c.yaml") == [["fit", "--config", "c.yaml"]]
    assert _slug("dvc.yaml is generated") == "dvcyaml-is-generated"
    _, subs = _subcommands()
    assert {"fit", "repro", "dvc-yaml"} <= set(subs) and "--resume" in subs["fit"]._option_string_actions
