"""`seqpipe repro --jobs N`: `dvc repro` with N stages at a time.

`dvc repro` runs stages one after another, and every seqpipe stage computes on one thread (SEQPIPE_THREADS),
so on a 2-core machine it leaves a core idle for the whole pipeline. DVC releases its repository lock while a
stage's command runs, so stages of independent branches can run side by side as separate
`dvc repro --single-item <stage>` processes (DVC's documented way to parallelize, "Parallel stage execution";
`--wait-for-lock` queues them for the lock instead of failing). This module schedules them: a stage starts
once every stage it depends on has finished, the longest remaining chain first, a chain's length being the seconds
its stages took in the last run (``STAGE_SECONDS``, pipelines/stage_seconds.json, which each run updates and which is
committed with dvc.lock; a stage it does not know counts ``DEFAULT_SECONDS``). So the two long LSTM fits start first
and everything else fills the other core around them. A final plain `dvc repro` checks that nothing is left.

Each stage runs the same command and seed as under `dvc repro`: the same bits, in another order. DVC still decides
what is stale, records dvc.lock and caches the outputs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from seqpipe import io
from seqpipe.errors import SeqpipeError

log = logging.getLogger(__name__)

STAGE_SECONDS = Path("pipelines/stage_seconds.json")  # wall seconds of each stage in the last run
DEFAULT_SECONDS = {"train": 300.0, "other": 30.0}  # a stage the file does not know: a fit runs minutes, others seconds


@dataclass
class StageRun:
    name: str
    returncode: int
    seconds: float
    ran: bool  # False where DVC found the stage up to date


def stage_graph(root: Path) -> tuple[list[str], dict[str, set[str]]]:
    """The pipeline's stage names in dvc.yaml order and, for each, the stages it reads outputs of (DVC's own
    dependency graph, so the order is exactly the one `dvc repro` respects)."""
    from dvc.repo import Repo

    with contextlib.chdir(root), Repo(".") as repo:  # stage addresses are relative to the working directory
        graph = repo.index.graph  # an edge stage -> a stage whose output it depends on
        names = {stage: stage.addressing for stage in graph.nodes}
        order = [s.addressing for s in repo.index.stages]
        upstream = {names[s]: {names[u] for u in graph.successors(s)} for s in graph.nodes}
    return order, upstream


def stage_cost(name: str, seconds: dict[str, float] | None = None) -> float:
    """The seconds ``name`` is expected to take: its last measured time, else a default by kind."""
    if seconds and name in seconds:
        return float(seconds[name])
    return DEFAULT_SECONDS["train" if "_train_" in name else "other"]


def load_stage_seconds(root: Path) -> dict[str, float]:
    try:
        return {str(k): float(v) for k, v in json.loads((root / STAGE_SECONDS).read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def save_stage_seconds(root: Path, results: Sequence[StageRun]) -> None:
    """Record the stages that ran (a stage found up to date keeps its earlier time)."""
    if not (root / STAGE_SECONDS).parent.is_dir():
        return
    seconds = load_stage_seconds(root) | {r.name: round(r.seconds, 1) for r in results if r.ran and r.returncode == 0}
    io.write_json(root / STAGE_SECONDS, dict(sorted(seconds.items())), indent=2)


def priorities(
    order: Sequence[str], upstream: dict[str, set[str]], seconds: dict[str, float] | None = None
) -> dict[str, float]:
    """Length in expected seconds of the longest chain from each stage to the end of the pipeline (itself
    included)."""
    downstream: dict[str, list[str]] = {name: [] for name in order}
    for name in order:
        for up in upstream[name]:
            downstream[up].append(name)
    memo: dict[str, float] = {}

    def chain(name: str) -> float:
        if name not in memo:
            memo[name] = stage_cost(name, seconds) + max((chain(d) for d in downstream[name]), default=0.0)
        return memo[name]

    return {name: chain(name) for name in order}


def schedule(
    order: Sequence[str],
    upstream: dict[str, set[str]],
    jobs: int,
    run_stage: Callable[[str], StageRun],
    seconds: dict[str, float] | None = None,
) -> list[StageRun]:
    """Run every stage with ``run_stage``, at most ``jobs`` at a time, each after all of its upstream stages
    succeeded. After a failure nothing new starts (the running stages finish), as `dvc repro` stops at the
    first failed stage; the failed and never-started stages are what the caller reports."""
    if jobs < 1:
        raise SeqpipeError(f"--jobs must be at least 1, got {jobs}")
    missing = {u for ups in upstream.values() for u in ups} - set(order)
    if missing:
        raise SeqpipeError(f"stages depend on stages that are not in the pipeline: {sorted(missing)}")
    rank = priorities(order, upstream, seconds)
    position = {name: i for i, name in enumerate(order)}
    done: set[str] = set()
    started: set[str] = set()
    results: list[StageRun] = []
    finished: list[StageRun] = []
    cond = threading.Condition()
    failed = False

    def worker(name: str) -> None:
        try:
            result = run_stage(name)
        except Exception as e:  # a crash of the runner itself counts as the stage failing
            log.error("stage %s: %s", name, e)
            result = StageRun(name, 1, 0.0, False)
        with cond:
            finished.append(result)
            cond.notify()

    running = 0
    threads = []
    while True:
        with cond:
            while finished:
                result = finished.pop()
                running -= 1
                results.append(result)
                if result.returncode == 0:
                    done.add(result.name)
                else:
                    failed = True
            if not failed:
                ready = [n for n in order if n not in started and upstream[n] <= done]
                ready.sort(key=lambda n: (-rank[n], position[n]))
                for name in ready[: jobs - running]:
                    started.add(name)
                    running += 1
                    t = threading.Thread(target=worker, args=(name,), daemon=True)
                    threads.append(t)
                    t.start()
            if running == 0:
                break
            cond.wait()
    for t in threads:
        t.join()
    return results


class _Printer:
    """Prefixes each output line with its stage, so two stages' logs stay readable when interleaved."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def line(self, stage: str, text: str) -> None:
        with self._lock:
            sys.stdout.write(f"[{stage}] {text}")
            if not text.endswith("\n"):
                sys.stdout.write("\n")
            sys.stdout.flush()


def stage_env() -> dict[str, str]:
    """Stage commands (`seqpipe`, `python -m`) find this interpreter's environment first: no venv to activate."""
    return {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}


def dvc_stage_runner(
    root: Path, dvc: str, printer: _Printer, running: set[subprocess.Popen] | None = None
) -> Callable[[str], StageRun]:
    """Runs one stage with `dvc repro --single-item`, in a process group of its own (recorded in ``running``), so
    an interrupted repro stops it and its stage's command together."""

    def run_stage(name: str) -> StageRun:
        start = time.monotonic()
        ran = False
        cmd = [dvc, "--wait-for-lock", "repro", "--single-item", name]
        out = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True, "errors": "replace", "bufsize": 1}
        with subprocess.Popen(cmd, cwd=root, start_new_session=True, env=stage_env(), **out) as proc:
            if running is not None:
                running.add(proc)
            assert proc.stdout is not None
            for text in proc.stdout:
                ran = ran or text.startswith("Running stage")
                printer.line(name, text)
        if running is not None:
            running.discard(proc)
        seconds = time.monotonic() - start
        if proc.returncode == 0:
            printer.line(name, f"{'done' if ran else 'up to date'} ({seconds:.0f} s)")
        return StageRun(name, proc.returncode, seconds, ran)

    return run_stage


def upstream_closure(targets: Sequence[str], upstream: dict[str, set[str]]) -> set[str]:
    """The targets and every stage they read from, directly or not (what `dvc repro <targets>` runs)."""
    unknown = sorted(set(targets) - set(upstream))
    if unknown:
        raise SeqpipeError(f"no stage named {', '.join(unknown)}", where="dvc.yaml", fix="see `dvc stage list`")
    seen: set[str] = set()
    todo = list(targets)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(upstream[name])
    return seen


def repro(root: Path = Path("."), jobs: int | None = None, targets: Sequence[str] | None = None) -> int:
    """Reproduce the pipeline under ``root`` (or only ``targets`` and what they read) with ``jobs`` stages at a
    time (default: one a core)."""
    root = root.resolve()
    if not (root / "dvc.yaml").exists():
        raise SeqpipeError(f"no dvc.yaml in {root}", fix="run it in the project root (or `seqpipe dvc-yaml` first)")
    if not (root / ".dvc").is_dir():
        raise SeqpipeError(f"{root} is not a DVC project", fix="run `dvc init` there first (`make repro` does)")
    dvc = shutil.which("dvc") or shutil.which("dvc", path=str(Path(sys.executable).parent))
    if dvc is None:
        raise SeqpipeError("the dvc command is not on PATH", fix="pip install 'seqpipe[pipeline]' (make install)")
    if jobs is None:  # one a core this process may use
        jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    _init_tracking_store(root)
    order, upstream = stage_graph(root)
    if targets:
        keep = upstream_closure(targets, upstream)
        order = [n for n in order if n in keep]
        upstream = {n: ups for n, ups in upstream.items() if n in keep}
    log.info("%d stages, %d at a time", len(order), jobs)
    start = time.monotonic()
    running: set[subprocess.Popen] = set()
    try:
        results = schedule(
            order, upstream, jobs, dvc_stage_runner(root, dvc, _Printer(), running), load_stage_seconds(root)
        )
    except KeyboardInterrupt:
        return _interrupted(running)
    save_stage_seconds(root, results)
    bad = [r.name for r in results if r.returncode != 0]
    if bad:
        left = [n for n in order if n not in {r.name for r in results}]
        log.error("failed: %s; not started: %s", ", ".join(bad), ", ".join(left) or "none")
        return 1
    log.info(
        "%d stages ran, %d were up to date, in %.1f min; checking with a plain `dvc repro`",
        sum(r.ran for r in results),
        sum(not r.ran for r in results),
        (time.monotonic() - start) / 60,
    )
    try:
        return subprocess.run([dvc, "repro", *(targets or [])], cwd=root, env=stage_env()).returncode
    except KeyboardInterrupt:  # the child shares the terminal's process group: Ctrl-C reached it too
        return _interrupted(set())


def _interrupted(running: set[subprocess.Popen], grace: float = 10.0) -> int:
    """Ctrl-C: SIGINT to every running stage's process group (dvc releases its lock), SIGKILL after ``grace``
    seconds; one line instead of a traceback, and 130, the shell's status for SIGINT."""
    procs = list(running)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGINT)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    sys.stderr.write(f"seqpipe repro: interrupted; stopped {len(procs)} running stage(s)\n")
    return 130


def _init_tracking_store(root: Path) -> None:
    """Create the MLflow store's tables before stages that log start side by side (mlflow comes with dvc)."""
    from seqpipe import tracking

    with contextlib.suppress(ImportError):
        tracking.init_store(root)
