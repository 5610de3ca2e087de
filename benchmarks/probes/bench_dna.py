"""DNA benchmark -> benchmarks/probes/dna.md: where the time of the DNA pipeline goes. Reproduce with

    .venv/bin/python benchmarks/probes/bench_dna.py [--n 6000] [--threads 1]

A. Reading: FASTA + labels CSV -> validated uint8 codes (the preprocess stage's work), bases/s.
B. k-mer features (k = 1..6, plain and canonical) for the whole set: the baseline's feature cost.
C. One training step (forward + backward, batch 64, 200 bp) of the DanQ-style CRNN (conv + pool 8
   -> 25 BiLSTM steps) against a plain BiLSTM over all 200 one-hot bases: why the CRNN gets many
   more updates out of the same CPU minute.
D. Test-time reverse-complement averaging: two forward passes instead of one.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]

from seqpipe.data.spec import DataSpec  # noqa: E402
from seqpipe.domains.dna.datamodule import reverse_complement_batch  # noqa: E402
from seqpipe.domains.dna.kmer import kmer_features  # noqa: E402
from seqpipe.domains.dna.motifs import MotifTaskConfig, write_dataset  # noqa: E402
from seqpipe.domains.dna.source import DnaRules, read_dna  # noqa: E402
from seqpipe.models import RecurrentModel  # noqa: E402
from seqpipe.models.crnn import CRNN  # noqa: E402


def median_time(fn, repeats: int) -> float:
    fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=6000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "probes" / "dna.md"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        raw = write_dataset(MotifTaskConfig(n=a.n), Path(tmp) / "raw")
        gen = time.perf_counter() - t
        t = time.perf_counter()
        res = read_dna(raw / "sequences.fa", DnaRules(), labels=raw / "labels.csv")
        read = time.perf_counter() - t
    bases = sum(len(c) for c in res.codes)
    rows.append(("A", f"generate {a.n} x 200 bp (JASPAR motifs)", f"{gen:.2f} s", ""))
    rows.append(
        ("A", "read + validate + encode FASTA + labels", f"{read:.2f} s", f"{bases / read / 1e6:.2f} M bases/s")
    )
    for canon in (False, True):
        t = time.perf_counter()
        X = kmer_features(res.codes, range(1, 7), canon)
        rows.append(
            (
                "B",
                f"k-mer features k=1..6 {'canonical' if canon else 'plain'}",
                f"{time.perf_counter() - t:.2f} s",
                f"{X.shape[1]} features",
            )
        )
    spec = DataSpec(input="tokens", target="class", vocab_size=6, num_classes=2).to_dict()
    x = torch.from_numpy(np.stack(res.codes[:64]).astype(np.int64))
    y = torch.zeros(64, dtype=torch.long)
    models = {
        "CRNN conv64 k19 pool8 + BiLSTM64 (25 steps)": CRNN(
            spec, conv_channels=[64], kernel_size=19, time_pool=[8], cell="lstm", hidden_size=64, bidirectional=True
        ),
        "plain BiLSTM64 on one-hot (200 steps)": RecurrentModel(
            spec, cell="lstm", hidden_size=64, num_layers=1, one_hot=True, bidirectional=True, pooling="mean"
        ),
    }
    for name, m in models.items():
        m.train()

        def step(m=m):
            loss = torch.nn.functional.cross_entropy(m(x)[0], y)
            loss.backward()

        rows.append(("C", f"train step, batch 64: {name}", f"{median_time(step, 10) * 1e3:.1f} ms", ""))
    m = models["CRNN conv64 k19 pool8 + BiLSTM64 (25 steps)"].eval()
    big = torch.from_numpy(np.stack(res.codes[:600]).astype(np.int64))
    with torch.no_grad():
        one = median_time(lambda: m(big), 3)
        both = median_time(lambda: (m(big), m(reverse_complement_batch(big))), 3)
    rows.append(("D", "CRNN predict 600 sequences, forward only", f"{one * 1e3:.0f} ms", ""))
    rows.append(
        ("D", "CRNN predict 600 sequences, both strands averaged", f"{both * 1e3:.0f} ms", f"x{both / one:.2f}")
    )
    text = [
        "# DNA benchmark",
        "",
        f"`benchmarks/probes/bench_dna.py --n {a.n} --threads {a.threads}` on {platform.machine()}, "
        f"torch {torch.__version__}, {a.threads} thread(s); medians. Load average at the end: "
        f"{os.getloadavg()[0]:.1f} (a shared machine inflates every row).",
        "",
        "| part | what | time | note |",
        "|---|---|---|---|",
    ]
    text += [f"| {p} | {w} | {t} | {n} |" for p, w, t, n in rows]
    Path(a.out).write_text("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    main()
