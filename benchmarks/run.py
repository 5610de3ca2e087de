"""The product benchmarks, declared in one place; `make bench` runs them all into benchmarks/results.md.

    python benchmarks/run.py                 # all, the quick sizes (what `make bench` runs)
    python benchmarks/run.py text threads    # some of them
    python benchmarks/run.py --full          # the full sizes of the per-benchmark .md records (tens of minutes)

Each benchmark is a module here with ``run(quick) -> harness.Result``; text.md, text_preprocess.md, dna_encode.md,
audio_workers.md and threads.md are earlier full-size runs of them. benchmarks/probes/ holds one-off lab notes
(hyperparameter searches, profiles, design choices), not run here.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import bench_audio_workers
import bench_dna_encode
import bench_gpu
import bench_text
import bench_text_preprocess
import bench_threads
from harness import ROOT, Result, machine, report

BENCHMARKS: dict[str, Callable[[bool], Result]] = {
    "text": bench_text.run,
    "text_preprocess": bench_text_preprocess.run,
    "dna_encode": bench_dna_encode.run,
    "audio_workers": bench_audio_workers.run,
    "threads": bench_threads.run,
    "gpu": bench_gpu.run,
}
NOTE = (
    "Measured on a shared machine while other work ran: the absolute numbers are noisy, compare the ratios "
    "(each measured alternately in one run) and rerun for a second look."
)


def run_all(names: list[str], quick: bool) -> list[Result]:
    """Each named benchmark in turn; one that fails becomes a row saying so, and the others still run."""
    out = []
    for name in names:
        print(f"== {name}", flush=True)
        t = time.perf_counter()
        try:
            res = BENCHMARKS[name](quick)
        except Exception as e:  # a broken benchmark must not hide the others' numbers
            res = Result(name, skipped=f"failed: {type(e).__name__}: {str(e).strip().splitlines()[-1][:200]}")
        res.seconds = time.perf_counter() - t
        for m, v in res.rows or [("skipped", res.skipped)]:
            print(f"   {m}: {v}", flush=True)
        out.append(res)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    p.add_argument("--full", action="store_true", help="the full sizes instead of the quick ones")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results.md"))
    argv = sys.argv[1:] if argv is None else argv
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    names = args.names or list(BENCHMARKS)
    results = run_all(names, quick=not args.full)
    command = "make bench" if not argv else "python benchmarks/run.py " + " ".join(argv)
    text = report(results, command.strip(), machine(), NOTE)
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")
    return 1 if any(r.skipped and r.skipped.startswith("failed") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
