"""DNA reading/encoding throughput and memory on a large FASTA.

    python benchmarks/run.py dna_encode [--full]    # 50 MB, or 1000 MB (benchmarks/dna_encode.md is such a run)

Writes a FASTA of 50 (1000) megabytes (random bases, seed 0, 80-column lines, ``>r<i> label=<a|b>``
headers) in a temporary folder, then, each in a fresh process:

- read: ``seqpipe.domains.dna.source.read_dna(fasta)`` -- read, validate, encode every record, all kept in memory;
- stream: ``seqpipe.domains.dna.source.iter_dna(fasta)`` -- the same, one record at a time, nothing kept;
- preprocess: ``DNADataModule(source=fasta, labels=None).prepare_data()`` -- the preprocess stage's
  work, streamed (read, validate, encode, append to the store; then split and index).

Reported: wall time, MB/s of FASTA, peak RSS of the step itself (VmHWM reset after the imports via
/proc/self/clear_refs; "RSS before" is what the imports hold) -- a streamed encoder keeps the peak
flat as the file grows. The file is deleted afterwards. The machine is shared: rerun for a second look.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from harness import Result, run_child

CHILD = r"""
import json, time
what = {what!r}
if what == "read":
    from seqpipe.domains.dna.source import read_dna
elif what == "stream":
    from seqpipe.domains.dna.source import iter_dna
else:
    from seqpipe.domains.dna.datamodule import DNADataModule
reset_peak()
base = mb("VmRSS")
t = time.perf_counter()
if what == "read":
    res = read_dna({fasta!r})
    n, bases = len(res.ids), int(sum(len(c) for c in res.codes))
elif what == "stream":
    n = bases = 0
    for r in iter_dna({fasta!r}):
        n, bases = n + 1, bases + len(r.codes)
else:
    dm = DNADataModule(source={fasta!r}, labels=None, prepared_dir={out!r})
    dm.prepare_data()
    from seqpipe.data.store import PreparedStore
    meta = PreparedStore.open({out!r}).meta
    base_arrays = ("bases", "codes", "sequence", "tokens")
    n, bases = int(meta["records"]), int(sum(a["shape"][0] for k, a in meta["arrays"].items() if k in base_arrays))
dt = time.perf_counter() - t
print(json.dumps(dict(seconds=dt, rss_before_mb=base, peak_mb=mb("VmHWM"), records=n, bases=bases)))
"""


def make_fasta(path: Path, mb: float, record_len: int, line_len: int = 80) -> tuple[int, int]:
    rng = np.random.default_rng(0)
    lut = np.frombuffer(b"ACGT", np.uint8)
    target, written, i = int(mb * 1e6), 0, 0
    with open(path, "wb") as f:
        while written < target:
            seq = lut[rng.integers(0, 4, record_len)]
            pad = (-record_len) % line_len
            lines = (
                np.concatenate([seq, np.full(pad, ord("\n"), np.uint8)]).reshape(-1, line_len)
                if pad
                else seq.reshape(-1, line_len)
            )
            body = b"\n".join(bytes(line).rstrip(b"\n") for line in lines) + b"\n"
            rec = f">r{i} label={'ab'[i % 2]}\n".encode() + body
            f.write(rec)
            written += len(rec)
            i += 1
    return written, i


SIZES = {"quick": dict(mb=50, record_len=2000), "full": dict(mb=1000, record_len=2000)}
STEPS = {
    "read": "`read_dna(fasta)` (all records kept in memory)",
    "stream": "`iter_dna(fasta)` (one record at a time)",
    "preprocess": "`DNADataModule(...).prepare_data()` (the preprocess stage, streamed into the store)",
}


def run(quick: bool = True) -> Result:
    """Each step once, in a fresh process, on the same generated FASTA."""
    size = SIZES["quick" if quick else "full"]
    tmp = Path(tempfile.mkdtemp(prefix="bench_dna_encode_"))
    r = Result("dna_encode")
    try:
        fasta = tmp / "big.fa"
        nbytes, n = make_fasta(fasta, size["mb"], size["record_len"])
        for what, label in STEPS.items():
            got = run_child(CHILD.format(what=what, fasta=str(fasta), out=str(tmp / "prep")))
            r.add(
                label,
                f"{nbytes / got['seconds'] / 1e6:.1f} MB/s, peak RSS {got['peak_mb']} MB "
                f"(imports {got['rss_before_mb']} MB)",
            )
            shutil.rmtree(tmp / "prep", ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    r.about = (
        f"a {nbytes / 1e6:.0f} MB FASTA ({n} random records of {size['record_len']} bp, seed 0, 80-column lines): "
        "read, validate, encode; peak RSS is VmHWM reset after the imports. The streamed steps' peak grows with "
        "the number of records, not the bases; read_dna's grows with the file."
    )
    return r
