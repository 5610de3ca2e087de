"""The house rules for imports, read from every import statement (lazy ones inside functions too):

- the core's layers go one way: errors -> data and the registry -> models -> evaluation kit -> tracking/config
  -> project -> stages/training -> cli; a module may import its own layer or any layer below it;
- the core never imports a domain: it finds them through seqpipe.registry (by name, at run time);
- a domain imports the core's library layers (data, models, the evaluation kit, errors) and the domains its
  DOMAIN.builds_on names, never the pipeline (tracking, config, stages, cli) and never the registry.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import seqpipe
from seqpipe import registry

PACKAGE = Path(seqpipe.__file__).parent
# lowest first; a core module is placed by its first dotted part below seqpipe (a subpackage or a top-level file)
LAYERS: list[set[str]] = [
    {"__init__", "errors", "progress", "io"},  # the version, the one exception type, progress bars, atomic writes
    {"data", "domain", "registry"},  # stores, windows, DataSpec, the datamodule base; the domain contract, the registry
    {"models"},  # models, loading a checkpoint
    {"evaluation"},  # the evaluation kit the domains' tasks share
    # MLflow, run folders, callbacks and the training guards, configs, precision, predict, serving, verify
    {
        "tracking",
        "runlog",
        "runlog_eval",
        "tracking_guard",
        "tracking_store",
        "runs",
        "callbacks",
        "guards",
        "config",
        "config_check",
        "config_types",
        "precision",
        "predict",
        "serving",
        "verify",
    },
    {"project"},  # the project's folders and the setup every stage shares
    # the stages, dvc.yaml and its plots, running them
    {"stages", "training", "trainer", "summary", "dvcgen", "dvcplots", "codedeps", "repro", "demo", "compare"},
    {"cli", "__main__"},
]
DOMAIN_MAY_IMPORT = set().union(*LAYERS[:4]) - {"__init__", "registry"}  # the library layers, not the pipeline


def layer_of(module: str) -> int:
    part = module.split(".")[1] if "." in module else "__init__"
    for i, names in enumerate(LAYERS):
        if part in names:
            return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/core/test_import_direction.py")


def domain_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "domains" else None


def imports(path: Path) -> set[str]:
    return imports_of_tree(ast.parse(path.read_text()))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 2 else parts)


def wrong_imports(files: dict[str, Path] | None = None) -> list[str]:
    """Every import that breaks a rule, over ``files`` (module name -> file; default: the whole package)."""
    wrong = []
    for me, path in (files or {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}).items():
        mine = domain_of(me)
        allowed = set(registry.get(mine).builds_on) | {mine} if mine else set()
        for target in imports(path) - {"seqpipe"}:
            theirs = domain_of(target)
            if mine is None and (theirs is not None or target == "seqpipe.domains"):
                wrong.append(f"the core's {me} imports the domain module {target}")
            elif mine is None and layer_of(target) > layer_of(me):
                wrong.append(f"{me} imports {target}, a higher layer")
            elif mine is not None and theirs is not None and theirs not in allowed:
                wrong.append(f"domain {mine} ({me}) imports domain {theirs}, not in its builds_on")
            elif mine is not None and theirs is None and target.split(".")[1] not in DOMAIN_MAY_IMPORT:
                wrong.append(f"domain {mine} ({me}) imports {target}, outside the core's library layers")
    return wrong


def test_imports_follow_the_house_rules() -> None:
    wrong = wrong_imports()
    assert not wrong, "; ".join(wrong)


def test_builds_on_has_no_cycle() -> None:
    def chain(name: str, seen: tuple[str, ...]) -> None:
        assert name not in seen, f"domains build on each other in a circle: {' -> '.join((*seen, name))}"
        for other in registry.get(name).builds_on:
            chain(other, (*seen, name))

    for name in registry.builtin_names():
        chain(name, ())


def test_the_core_names_no_domain_outside_the_registry() -> None:
    """No core module spells a built-in domain's package path: each is found by name through the registry."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if (
            domain_of(module_name(path)) is None
            and path.name != "registry.py"
            and "seqpipe.domains." in path.read_text()
        ):
            offenders.append(str(path.relative_to(PACKAGE)))
    assert offenders == [], offenders


@pytest.mark.parametrize(
    "code, expected",
    [
        ("def f():\n    from seqpipe.stages import fit\n", "higher layer"),
        ("from seqpipe.domains.text.task import baselines\n", "imports the domain module"),
    ],
)
def test_the_check_catches_a_wrong_import(tmp_path: Path, code: str, expected: str) -> None:
    bad = tmp_path / "probe.py"
    bad.write_text(code)
    wrong = wrong_imports({"seqpipe.data.probe": bad})
    assert len(wrong) == 1 and expected in wrong[0]


def test_a_domain_may_not_reach_into_the_pipeline_or_an_unrelated_domain(tmp_path: Path) -> None:
    bad = tmp_path / "probe.py"
    bad.write_text("from seqpipe.tracking import log_run\nfrom seqpipe.domains.dna.kmer import kmer_features\n")
    wrong = wrong_imports({"seqpipe.domains.digits.probe": bad})
    assert (
        len(wrong) == 2
        and "outside the core's library layers" in " ".join(wrong)
        and "not in its builds_on" in " ".join(wrong)
    )


def runtime_imports(path: Path) -> set[str]:
    """Like ``imports`` but without ``if TYPE_CHECKING:`` blocks (annotations only, never run)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    return imports_of_tree(tree)


def imports_of_tree(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "seqpipe":
            found.add(node.module)
            if node.module == "seqpipe":  # `from seqpipe import stages` imports seqpipe.stages
                found.update(
                    f"seqpipe.{a.name}"
                    for a in node.names
                    if (PACKAGE / a.name).is_dir() or (PACKAGE / f"{a.name}.py").exists()
                )
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "seqpipe")
    return found


def test_no_import_cycles() -> None:
    """No two modules need each other at run time (stages and training once did: the setup both read now lives
    in seqpipe.project)."""
    files = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    graph = {m: {t for t in runtime_imports(p) if t in files and t != m} for m, p in files.items()}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph[start]:
            if nxt == goal or (nxt not in seen and (seen.add(nxt) or reaches(nxt, goal, seen))):
                return True
        return False

    cycles = sorted(f"{a} <-> {b}" for a in graph for b in graph[a] if reaches(b, a, set()))
    assert cycles == [], cycles
