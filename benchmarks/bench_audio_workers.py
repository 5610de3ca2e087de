"""Audio preprocessing in worker processes: clips/s for 1 and 2 workers.

    python benchmarks/run.py audio_workers [--full]    # --full: 4 renditions, 3 rounds (benchmarks/audio_workers.md)

Generates the default spoken-digits set (10 words x every espeak-ng voice x renditions, the set
`dvc repro` builds; seed 0) into a temporary folder, then runs ``prepare_audio`` (decode, resample,
log-mel, split, statistics, store) with each worker count in turn, round by round, in fresh
processes, and checks that every run wrote the same features.bin and index.npz bytes. Compare the
ratios, not the absolute times: the machine is shared.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from pathlib import Path

from harness import Result, Samples, run_child

CHILD = r"""
import json, resource, time
import numpy as np
from seqpipe.domains.audio.features import FeatureConfig, featurize_clips, log_mel
from seqpipe.domains.audio.prepare import prepare_audio
from seqpipe.domains.audio.source import SkipLog, list_clips
def cpu():
    return sum(getattr(resource.getrusage(w), f) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))
t, c = time.perf_counter(), cpu()
st = prepare_audio({source!r}, {out!r}, workers={workers})
res = dict(seconds=time.perf_counter() - t, cpu=cpu() - c, clips=int(st.meta["records"]))
# the part that runs in the workers, alone (librosa already warm): decode + resample + log-mel of every clip
paths = [c.path for c in list_clips({source!r}, SkipLog(False))]
t = time.perf_counter()
n = sum(1 for _ in featurize_clips(paths, FeatureConfig(), {workers}))
res["featurize_seconds"] = time.perf_counter() - t
print(json.dumps(res))
"""


def _burn(n: int) -> int:
    s = 0
    for i in range(n):
        s += i * i
    return s


def reference_seconds(workers: int, tasks: int = 8, n: int = 2_000_000) -> float:
    """A pure-Python CPU task split over ``workers`` processes: the parallelism the machine offers right now."""
    import multiprocessing as mp

    t = time.perf_counter()
    with mp.get_context("fork").Pool(workers) as pool:
        pool.map(_burn, [n] * tasks)
    return time.perf_counter() - t


def digest(path: Path) -> str:
    h = hashlib.sha256()
    for name in ("features.bin", "index.npz"):
        h.update((path / name).read_bytes())
    return h.hexdigest()[:16]


SIZES = {"quick": dict(renditions=1, rounds=2), "full": dict(renditions=4, rounds=3)}
WORKERS = (1, 2)


def run(quick: bool = True) -> Result:
    """prepare_audio with 1 and 2 workers in fresh processes, alternating, on generated spoken digits."""
    from seqpipe.domains.audio.spoken_digits import generate_spoken_digits

    size = SIZES["quick" if quick else "full"]
    tmp = Path(tempfile.mkdtemp(prefix="bench_audio_workers_"))
    got: dict[int, list[dict]] = {w: [] for w in WORKERS}
    digests = set()
    try:
        source = tmp / "digits"
        clips = generate_spoken_digits(source, renditions=size["renditions"], seed=0)["clips"]
        for r in range(size["rounds"]):
            for w in WORKERS if r % 2 == 0 else WORKERS[::-1]:
                out = tmp / f"p{w}"
                res = run_child(CHILD.format(source=str(source), out=str(out), workers=w))
                res["reference"] = reference_seconds(w)
                got[w].append(res)
                digests.add(digest(out))
                shutil.rmtree(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def med(w: int, key: str) -> float:
        return Samples([x[key] for x in got[w]]).median

    r = Result("audio_workers")
    for w in WORKERS:
        r.add(
            f"{w} worker(s): prepare_audio clips/s, speed-up",
            f"{clips / med(w, 'seconds'):.0f}, {med(1, 'seconds') / med(w, 'seconds'):.2f}x "
            f"(CPU time, all processes {med(w, 'cpu'):.1f} s)",
        )
        r.add(
            f"{w} worker(s): featurizing alone clips/s, speed-up",
            f"{clips / med(w, 'featurize_seconds'):.0f}, "
            f"{med(1, 'featurize_seconds') / med(w, 'featurize_seconds'):.2f}x"
            f" (reference CPU task: {med(1, 'reference') / med(w, 'reference'):.2f}x)",
        )
    r.add("every run wrote the same features.bin + index.npz", "yes" if len(digests) == 1 else "**NO**")
    r.about = (
        f"{clips} generated spoken-digit clips (seed 0), `preprocess_workers` 1 and 2, a fresh process a run, "
        f"alternating, medians of {size['rounds']}. Featurizing alone is the part the workers share (decode, resample, "
        "log-mel); the reference CPU task (pure Python in as many processes) shows the speed-up the shared machine "
        "could give at the time (1.0x when other work holds both cores)."
    )
    return r
