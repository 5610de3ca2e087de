"""What every product benchmark shares: rounds and medians, A/B ratios measured alternately, peak RSS, the machine
header and the markdown table, so each benchmark file holds only what it measures.

A benchmark is a function ``run(quick: bool) -> Result``, declared in benchmarks/run.py.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Samples:
    """Repeated measurements of one quantity (seconds, MB/s, ...): the median is the figure, min-max the spread."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def spread(self) -> tuple[float, float]:
        return min(self.values), max(self.values)

    def fmt(self, unit: str = "s", scale: float = 1.0, digits: int = 2) -> str:
        """'12.30 ms (11.90-13.10, 3 rounds)': the median with the range it came from."""
        lo, hi = self.spread
        n = len(self.values)
        if n == 1:
            return f"{self.median * scale:.{digits}f} {unit} (1 round)"
        return f"{self.median * scale:.{digits}f} {unit} ({lo * scale:.{digits}f}-{hi * scale:.{digits}f}, {n} rounds)"


def repeat(fn: Callable[[], float | None], rounds: int) -> Samples:
    """Call ``fn`` ``rounds`` times; a call that returns a number reports its own measure, else its wall time."""
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        got = fn()
        out.append(time.perf_counter() - t if got is None else float(got))
    return Samples(out)


def alternate(variants: dict[str, Callable[[], float | None]], rounds: int) -> dict[str, Samples]:
    """Each variant once a round, the order reversed every other round (A B, B A, ...), so that machine noise and
    warm-up hit them alike; values as ``repeat``."""
    names = list(variants)
    got: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            got[name].extend(repeat(variants[name], 1).values)
    return {k: Samples(v) for k, v in got.items()}


def ratio(a: Samples, b: Samples) -> float:
    """median(a) / median(b): the figure an A/B benchmark reports."""
    return a.median / b.median


def round_ratios(a: Samples, b: Samples) -> list[float]:
    """a/b within each round, sorted: how steady the ratio was (the rounds pair up because they alternated)."""
    return sorted(x / y for x, y in zip(a.values, b.values, strict=True))


# -- peak memory ------------------------------------------------------------------------------------------------------

# Prepended to a child process's code: ``reset_peak()`` after the imports, then ``mb("VmHWM")`` is the work's own
# peak resident set (Linux /proc), ``mb("VmRSS")`` what is resident now.
RSS_PRELUDE = r"""
def mb(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) // 1024
def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
"""


def run_child(code: str, args: Sequence[str] = (), cwd: Path = ROOT, env: dict[str, str] | None = None) -> dict:
    """Run ``code`` (RSS_PRELUDE prepended; ``args`` as its sys.argv[1:]) in a fresh interpreter; it prints one
    JSON object last, returned here. Peak memory is the child's own VmHWM: getrusage's ru_maxrss of a child
    includes its parent's resident set (Linux carries the high-water mark across fork and exec)."""
    p = subprocess.run(
        [sys.executable, "-c", RSS_PRELUDE + code, *args], capture_output=True, text=True, cwd=cwd, env=env or None
    )
    if p.returncode:
        raise RuntimeError(f"benchmark child failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> int:
    """This process's peak resident set so far (getrusage), MB; it starts at the parent's at the fork."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


# -- reporting --------------------------------------------------------------------------------------------------------


@dataclass
class Result:
    """One benchmark's rows (measure, value), what it measured, and why it was skipped if it was."""

    name: str
    rows: list[tuple[str, str]] = field(default_factory=list)
    about: str = ""
    skipped: str | None = None
    seconds: float = 0.0

    def add(self, measure: str, value: str) -> None:
        self.rows.append((measure, value))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, str]:
    """What the numbers depend on: CPU, cores, library versions, date, load, commit."""
    import numpy
    import torch

    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return {
        "CPU": f"{cpu_model()}, {os.cpu_count()} cores visible",
        "GPU": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "Python / torch / numpy": f"{platform.python_version()} / {torch.__version__} / {numpy.__version__}",
        "date (UTC)": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "load average (1, 5, 15 min)": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
        "commit": rev.stdout.strip() or "unknown",
    }


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table; '|' inside a cell is escaped so it cannot split the row."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(headers), "|" + "---|" * len(headers), *(line(r) for r in rows)])


def report(results: Sequence[Result], command: str, header: dict[str, str], note: str) -> str:
    """The one results file: the note, the command that reproduces it, the machine, one table, what each measured."""
    rows = []
    for r in results:
        if r.skipped is not None:
            rows.append((r.name, "skipped", r.skipped))
        rows.extend((r.name, m, v) for m, v in r.rows)
    about = [f"- **{r.name}** ({r.seconds:.0f} s): {r.about}" for r in results if r.about]
    return "\n".join(
        [
            "# Benchmarks",
            "",
            note,
            "",
            f"Reproduce: `{command}`",
            "",
            *(f"- {k}: {v}" for k, v in header.items()),
            "",
            markdown_table(["benchmark", "measure", "value"], rows),
            "",
            "What each measures:",
            "",
            *about,
            "",
        ]
    )
