"""`seqpipe demo` (`make demo`): every domain end to end on the fast profile, in a scratch project, in minutes.

The real pipeline, shrunk: the project's dvc.yaml, pipelines/ and raw files are copied into a scratch folder
whose params.yaml says ``profile: fast``, and `seqpipe repro` runs one experiment of every dataset there
(preprocess -> baselines -> train -> evaluate, DVC and MLflow included). It ends with the summary table and the
command that opens those runs in the MLflow UI. Nothing in the project itself is written.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from seqpipe.errors import SeqpipeError

log = logging.getLogger(__name__)

# what a stage reads besides its own outputs: the stage definitions, the configs, the code DVC hashes, shipped data
COPIED = ("dvc.yaml", "params.yaml", "pipelines", "src", "pyproject.toml", "data/raw/splice")
MARKER = ".seqpipe-demo"


def demo_stages(stages: dict[str, dict]) -> list[str]:
    """One evaluate stage a dataset (its first experiment in dvc.yaml order): every domain, each once."""
    chosen: dict[str, str] = {}
    for name in stages:
        dataset, sep, _ = name.partition("_evaluate_")
        if sep and dataset not in chosen:
            chosen[dataset] = name
    return list(chosen.values())


def make_project(source: Path, out: Path) -> None:
    """The scratch project: a copy of what the stages read, on the fast profile, as a DVC project."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise SeqpipeError(f"{out} exists and is not a seqpipe demo", where=out, fix="pass an empty or new --dir")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("a scratch project written by `seqpipe demo`; safe to delete\n")
    for item in COPIED:
        src = source / item
        if not src.exists():
            raise SeqpipeError(f"{src} is missing", where=source, fix="run `seqpipe demo` in a seqpipe checkout")
        (out / item).parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, out / item, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(src, out / item)
    params = yaml.safe_load((out / "params.yaml").read_text()) or {}
    (out / "params.yaml").write_text(yaml.safe_dump({**params, "profile": "fast"}))
    dvc = shutil.which("dvc") or str(Path(sys.executable).parent / "dvc")
    subprocess.run([dvc, "init", "-q", "--no-scm"], cwd=out, check=True)


def evaluations(project: Path) -> list[Path]:
    """The whole evaluation documents the summary reads (metrics/ holds only their headlines)."""
    from seqpipe.summary import EVALUATION

    return sorted((project / "reports").glob(f"*/{EVALUATION}"))


def demo(out: Path, source: Path = Path("."), jobs: int | None = None) -> int:
    """Build the scratch project under ``out`` and run one experiment of every dataset there."""
    from seqpipe.repro import repro
    from seqpipe.summary import summary

    start = time.monotonic()
    source, out = source.resolve(), out.resolve()
    make_project(source, out)
    targets = demo_stages(yaml.safe_load((out / "dvc.yaml").read_text())["stages"])
    log.info("demo in %s: %d experiments on the fast profile (%s)", out, len(targets), ", ".join(targets))
    code = repro(out, jobs=jobs, targets=targets)
    if code != 0:
        return code
    print(summary(out / "metrics", files=evaluations(out)), end="")
    print(f"\nDemo done in {(time.monotonic() - start) / 60:.1f} min. Its runs in the MLflow UI:")
    print(
        f"  mlflow ui --backend-store-uri sqlite:///{out}/mlruns/mlflow.db --default-artifact-root "
        f"{out}/mlruns/artifacts --host 127.0.0.1 --port 5000 --workers 1"
    )
    return 0
