"""Imports inside seqpipe go one way: sources -> data -> models -> baselines -> evaluation (tasks) -> stages -> cli.

Every import statement counts, including the lazy ones inside functions (a lazy import that goes the wrong way
is still a cycle waiting to happen). A module may import its own layer or any layer below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import seqpipe

PACKAGE = Path(seqpipe.__file__).parent
# lowest first; a module is placed by its first dotted part below seqpipe (a subpackage or a top-level file)
LAYERS: list[set[str]] = [
    {"__init__", "errors", "progress"},  # the version, the one exception type, progress bars
    {"sources"},  # readers and generators of raw data
    {"data"},  # stores, datamodules, DataSpec and token ids
    {"models", "generate"},  # models, loading a checkpoint, sampling from a language model
    {"baselines"},  # the simple models every experiment is compared with
    {"evaluation", "predict"},  # one module a task: baselines run, scoring, predict
    {"tracking", "runs", "callbacks", "config", "precision"},  # MLflow, run folders, callbacks, configs, precision
    {"stages", "training", "summary", "dvcgen", "repro"},  # the pipeline stages, dvc.yaml, running it on N cores
    {"cli", "__main__"},
]


def layer_of(module: str) -> int:
    part = module.split(".")[1] if "." in module else "__init__"
    for i, names in enumerate(LAYERS):
        if part in names:
            return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_import_direction.py")


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
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


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 2 else parts)


def test_imports_go_one_way() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = module_name(path)
        for target in imports(path):
            if target != "seqpipe" and layer_of(target) > layer_of(me):
                wrong.append(f"{me} imports {target}")
    assert not wrong, "imports against the layer order: " + "; ".join(wrong)


def test_the_check_catches_a_wrong_way_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from seqpipe.stages import fit\n")
    assert layer_of(next(iter(imports(bad)))) > layer_of("seqpipe.data.text")
    assert layer_of("seqpipe.models.loading") > layer_of("seqpipe.data.spec") > layer_of("seqpipe.sources.dna")
