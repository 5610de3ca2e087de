"""The embedded default DNA dataset: real JASPAR motifs planted in background sequence.

No labeled DNA set ships inside a pip package that we know of, so the default is generated offline,
deterministically from a seed, from the position frequency matrices (PFMs) of the JASPAR 2024 CORE
collection that the ``pyjaspar`` package ships as ``pyjaspar/data/JASPAR2024.sqlite`` (read with the
standard library's sqlite3; no biopython needed). The output is ordinary FASTA plus a labels CSV, so
the pipeline reads it with the same reader a user's data goes through.

How one sequence is made (every random draw from ``numpy.random.default_rng(seed)``):

1. Background: ``seq_len`` i.i.d. bases with the sequence's own GC content drawn from
   U(gc_min, gc_max) (so base composition carries no label signal).
2. A motif instance of TF X: each position drawn from X's PFM column (counts + 0.25 pseudocount,
   normalized), so instances vary the way real binding sites do; the strand is + or - with
   probability 1/2 (a - instance is the reverse complement).
   A *shuffled* instance draws from the PFM with its columns permuted (same base composition,
   no motif).
3. Classes (binary task, the default) -- ``partner_a`` and ``partner_b`` (FOXA1 MA0148.5 and CEBPB
   MA0466.4 by default, two factors that co-occupy liver enhancers):
   - positive (label 1): an instance of A and one of B, both on one strand, A 5' of B on that strand,
     B starting ``gap`` bp after A ends, gap ~ U{0..max_gap} (a composite element).
   - negative (label 0), one of three kinds with weights ``neg_weights``:
       "lone":  one partner's instance plus a shuffled instance of the other, placed like a positive;
       "apart": both instances present but on opposite strands or >= ``far_gap`` bp apart;
       "swap":  both on one strand and close, but in the wrong order (B 5' of A).
   So the label depends on which motifs co-occur *and* on their spacing, strand and order: k-mer
   counts see the motifs but not most of the arrangement; a convolution + BiLSTM can read both.
   The rule is strand-symmetric: a sequence and its reverse complement always share a label.
4. Decoys: every sequence gets Poisson(``decoys``) instances of other TFs (``decoy_motifs``, minus any
   partner) at random positions and strands. Motifs never overlap each other; a draw that does not
   fit, or an "apart" draw that lands closer than ``far_gap`` on one strand, is redrawn.

Multi-class task (``task="multiclass"``): class k in 1..K holds a composite pair of the k-th pair in
``multiclass_pairs``; class 0 holds lone/shuffled partners of any pair. Same background and decoys.

Files written to ``out``: ``sequences.fa`` (``>id`` headers, 60 bases a line), ``labels.csv``
(id,label), ``sites.tsv`` (id, label, kind, tf, matrix_id, start (0-based), strand) and
``generation.json`` (every parameter, the JASPAR matrix ids and versions, class counts).

Run: ``python -m seqpipe.domains.dna.motifs --out data/raw/dna --n 6000 --seed 0``
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from seqpipe.data.generated import GeneratedFolder, add_seed, generator_parser, run_generator
from seqpipe.domains.dna.jaspar import Motif, jaspar_db, load_motifs
from seqpipe.errors import SeqpipeError

BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
COMP = np.array([3, 2, 1, 0])  # index of the complementary base in ACGT

__all__ = ["BASES", "COMP", "Motif", "MotifTaskConfig", "generate", "jaspar_db", "load_motifs", "main", "write_dataset"]


@dataclass
class MotifTaskConfig:
    n: int = 6000
    seq_len: int = 200
    seed: int = 0
    task: str = "binary"
    partner_a: str = "FOXA1"
    partner_b: str = "CEBPB"
    max_gap: int = 4
    far_gap: int = 30
    neg_weights: dict[str, float] = field(default_factory=lambda: {"lone": 3.0, "apart": 1.0, "swap": 1.0})
    positive_fraction: float = 0.5
    decoy_motifs: list[str] = field(
        default_factory=lambda: ["GATA1", "SOX2", "POU5F1", "SPI1", "MYC", "NFKB1", "CTCF", "TP53"]
    )
    decoys: float = 1.0
    gc_min: float = 0.35
    gc_max: float = 0.60
    multiclass_pairs: list[list[str]] = field(
        default_factory=lambda: [["SOX2", "POU5F1"], ["GATA1", "TAL1::TCF3"], ["FOXA1", "CEBPB"]]
    )
    release: str = "JASPAR2024"


class _Builder:
    def __init__(self, cfg: MotifTaskConfig, rng: np.random.Generator):
        self.cfg, self.rng = cfg, rng

    def background(self) -> np.ndarray:
        gc = self.rng.uniform(self.cfg.gc_min, self.cfg.gc_max)
        p = np.array([1 - gc, gc, gc, 1 - gc]) / 2
        return self.rng.choice(4, size=self.cfg.seq_len, p=p)

    def instance(self, m: Motif, shuffled: bool = False) -> np.ndarray:
        probs = m.probs[self.rng.permutation(m.length)] if shuffled else m.probs
        u = self.rng.random((m.length, 1))
        return (u > np.cumsum(probs, 1)).sum(1).clip(0, 3)

    def pair(self, a: np.ndarray, b: np.ndarray, gap: int, strand: int) -> np.ndarray:
        """a then gap then b on ``strand``; returned in + strand orientation (with background gap filler)."""
        filler = self.rng.integers(0, 4, size=gap)
        block = np.concatenate([a, filler, b])
        return COMP[block[::-1]] if strand < 0 else block


def _place(seq: np.ndarray, blocks: list[np.ndarray], rng: np.random.Generator) -> list[int] | None:
    """Non-overlapping random starts for blocks (rejection sampling); None if they do not fit."""
    L = len(seq)
    for _ in range(200):
        starts, taken = [], np.zeros(L, dtype=bool)
        ok = True
        for b in blocks:
            if len(b) > L:
                return None
            s = int(rng.integers(0, L - len(b) + 1))
            if taken[s : s + len(b)].any():
                ok = False
                break
            taken[s : s + len(b)] = True
            starts.append(s)
        if ok:
            for b, s in zip(blocks, starts, strict=False):
                seq[s : s + len(b)] = b
            return starts
    return None


def generate(cfg: MotifTaskConfig) -> tuple[list[str], list[str], list[str], list[dict]]:
    """(ids, sequences, labels, sites) for the configured task; deterministic from cfg.seed."""
    rng = np.random.default_rng(cfg.seed)
    b = _Builder(cfg, rng)
    if cfg.task == "binary":
        pairs = [(cfg.partner_a, cfg.partner_b)]
    elif cfg.task == "multiclass":
        pairs = [tuple(p) for p in cfg.multiclass_pairs]
    else:
        raise SeqpipeError(f"unknown task {cfg.task!r}", where="generate.task", fix="use binary or multiclass")
    names = sorted({n for p in pairs for n in p} | set(cfg.decoy_motifs))
    by_name = {m_name: m for m_name, m in zip(names, load_motifs(names, cfg.release), strict=False)}
    decoy_pool = [by_name[d] for d in cfg.decoy_motifs if all(d not in p for p in pairs)]
    kinds = list(cfg.neg_weights)
    kind_p = np.array([cfg.neg_weights[k] for k in kinds], dtype=float)
    kind_p /= kind_p.sum()
    ids, seqs, labels, sites = [], [], [], []
    width = len(str(cfg.n))
    i = 0
    while len(ids) < cfg.n:
        i += 1
        rid = f"seq{len(ids) + 1:0{width}d}"
        seq = b.background()
        k = int(rng.integers(len(pairs)))
        ma, mb = by_name[pairs[k][0]], by_name[pairs[k][1]]
        positive = rng.random() < (cfg.positive_fraction if cfg.task == "binary" else 1 - 1 / (len(pairs) + 1))
        kind = "composite" if positive else kinds[int(rng.choice(len(kinds), p=kind_p))]
        strand = 1 if rng.random() < 0.5 else -1
        gap = int(rng.integers(0, cfg.max_gap + 1))
        ia, ib = b.instance(ma), b.instance(mb)
        if kind == "composite":
            blocks = [b.pair(ia, ib, gap, strand)]
        elif kind == "swap":
            blocks = [b.pair(ib, ia, gap, strand)]
        elif kind == "lone":
            if rng.random() < 0.5:
                blocks = [b.pair(ia, b.instance(mb, shuffled=True), gap, strand)]
            else:
                blocks = [b.pair(b.instance(ma, shuffled=True), ib, gap, strand)]
        else:  # apart: opposite strands close by, or same strand far apart (placed independently)
            sa = strand
            sb = -strand if rng.random() < 0.5 else strand
            blocks = [ia if sa > 0 else COMP[ia[::-1]], ib if sb > 0 else COMP[ib[::-1]]]
        n_decoys = int(rng.poisson(cfg.decoys)) if decoy_pool else 0
        decoy_list = [decoy_pool[int(rng.integers(len(decoy_pool)))] for _ in range(n_decoys)]
        decoy_strands = [1 if rng.random() < 0.5 else -1 for _ in decoy_list]
        decoy_blocks = [b.instance(d) for d in decoy_list]
        decoy_blocks = [x if s > 0 else COMP[x[::-1]] for x, s in zip(decoy_blocks, decoy_strands, strict=False)]
        starts = _place(seq, blocks + decoy_blocks, rng)
        if starts is None:
            continue
        if kind == "apart":
            (s1, s2), l1, l2 = starts[:2], len(blocks[0]), len(blocks[1])
            d = max(s1, s2) - min(s1 + l1, s2 + l2) if s1 != s2 else 0
            same = sa == sb
            if same and d < cfg.far_gap:
                continue  # too close on one strand: that would be a composite-like arrangement; redraw
        if cfg.task == "binary":
            label = "1" if positive else "0"
        else:
            label = str(k + 1) if positive else "0"
        for _blk, s0 in zip(blocks, starts[: len(blocks)], strict=False):
            sites.append(
                {
                    "id": rid,
                    "label": label,
                    "kind": kind,
                    "tf": f"{ma.name}+{mb.name}",
                    "matrix_id": f"{ma.matrix_id}+{mb.matrix_id}",
                    "start": s0,
                    "strand": "+" if strand > 0 else "-",
                }
            )
        for d, s0, st in zip(decoy_list, starts[len(blocks) :], decoy_strands, strict=False):
            sites.append(
                {
                    "id": rid,
                    "label": label,
                    "kind": "decoy",
                    "tf": d.name,
                    "matrix_id": d.matrix_id,
                    "start": s0,
                    "strand": "+" if st > 0 else "-",
                }
            )
        ids.append(rid)
        seqs.append(BASES[seq].tobytes().decode())
        labels.append(label)
    return ids, seqs, labels, sites


def write_dataset(cfg: MotifTaskConfig, out: str | Path) -> Path:
    """Write sequences.fa, labels.csv, sites.tsv and generation.json under ``out`` (replaced whole)."""
    ids, seqs, labels, sites = generate(cfg)
    names = sorted(
        {*cfg.decoy_motifs, cfg.partner_a, cfg.partner_b}
        if cfg.task == "binary"
        else {*cfg.decoy_motifs, *(n for p in cfg.multiclass_pairs for n in p)}
    )
    with GeneratedFolder(
        out,
        "seqpipe.domains.dna.motifs",
        config=asdict(cfg),
        jaspar_release=cfg.release,
        matrices={m.name: m.matrix_id for m in load_motifs(names, cfg.release)},
        class_counts={c: labels.count(c) for c in sorted(set(labels))},
    ) as folder:
        with open(folder.path / "sequences.fa", "w") as f:
            for rid, s in zip(ids, seqs, strict=False):
                f.write(f">{rid}\n")
                for j in range(0, len(s), 60):
                    f.write(s[j : j + 60] + "\n")
        with open(folder.path / "labels.csv", "w") as f:
            f.write("id,label\n" + "".join(f"{r},{lab}\n" for r, lab in zip(ids, labels, strict=False)))
        with open(folder.path / "sites.tsv", "w") as f:
            cols = ["id", "label", "kind", "tf", "matrix_id", "start", "strand"]
            f.write("\t".join(cols) + "\n" + "".join("\t".join(str(s[c]) for c in cols) + "\n" for s in sites))
    return folder.out


def main(argv: list[str] | None = None) -> int:
    p = generator_parser(__doc__.splitlines()[0], "data/raw/dna")
    p.add_argument("--n", type=int, default=MotifTaskConfig.n)
    p.add_argument("--seq-len", type=int, default=MotifTaskConfig.seq_len)
    add_seed(p, MotifTaskConfig.seed)
    p.add_argument("--task", default="binary", choices=["binary", "multiclass"])
    p.add_argument("--decoys", type=float, default=MotifTaskConfig.decoys)
    p.add_argument("--max-gap", type=int, default=MotifTaskConfig.max_gap)
    a = p.parse_args(argv)
    cfg = MotifTaskConfig(n=a.n, seq_len=a.seq_len, seed=a.seed, task=a.task, decoys=a.decoys, max_gap=a.max_gap)
    out = write_dataset(cfg, a.out)
    print(f"[seqpipe] wrote {cfg.n} {cfg.task} sequences of {cfg.seq_len} bp to {out}")
    return 0


if __name__ == "__main__":
    run_generator(main)
