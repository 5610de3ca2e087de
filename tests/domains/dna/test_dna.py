"""DNA domain: readers (FASTA, FASTA.gz, CSV/TSV, class folders), validation rules, splits, RC, k-mer
baseline, the generated JASPAR set, evaluation and predict, and a tiny end-to-end stage run."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seqpipe.data.store import SPLIT_CODE
from seqpipe.domains.dna.datamodule import (
    DnaCollate,
    DNADataModule,
    ReverseComplementAugment,
    prepare_dna,
    reverse_complement_batch,
)
from seqpipe.domains.dna.kmer import KmerLogisticRegression, canonical_map, kmer_features
from seqpipe.domains.dna.motifs import MotifTaskConfig, generate, load_motifs, write_dataset
from seqpipe.domains.dna.source import DnaRules, decode, encode, read_dna, reverse_complement
from seqpipe.errors import SeqpipeError

RNG = np.random.default_rng(0)


def rand_seq(n: int, rng=RNG) -> str:
    return "".join(rng.choice(list("ACGT"), n))


def write_fasta(path: Path, recs: list[tuple[str, str]], gz: bool = False) -> Path:
    text = "".join(f">{h}\n{s[:30]}\n{s[30:]}\n" for h, s in recs)
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def labeled(n: int = 40, length: int = 50, seed: int = 1) -> list[tuple[str, str, str]]:
    rng = np.random.default_rng(seed)
    return [(f"r{i}", rand_seq(length, rng), str(i % 2)) for i in range(n)]


# -- encoding ---------------------------------------------------------------------------------
def test_encode_codes_case_and_reverse_complement():
    codes = encode(b"ACGTNacgtn")
    assert codes.tolist() == [1, 2, 3, 4, 5, 1, 2, 3, 4, 5]
    assert decode(reverse_complement(encode(b"AACGTN"))) == "NACGTT"


def test_iupac_codes_map_to_n_unless_strict():
    rules = DnaRules(strict=False)
    assert encode(b"ACRYG", rules).tolist() == [1, 2, 5, 5, 3]
    with pytest.raises(SeqpipeError, match=r"rec7: IUPAC ambiguity code 'R' at position 3"):
        encode(b"ACRYG", DnaRules(strict=True), record="rec7")


def test_u_read_as_t_only_when_configured():
    assert encode(b"ACGU", DnaRules(convert_u=True)).tolist() == [1, 2, 3, 4]
    with pytest.raises(SeqpipeError, match=r"rnaX: invalid character 'U' at position 4.*convert_u"):
        encode(b"ACGU", record="rnaX")


def test_invalid_character_names_record_and_position(tmp_path):
    fa = write_fasta(tmp_path / "bad.fa", [("ok1 label=0", "ACGT" * 10), ("bad2 label=1", "ACGTAC" + "X" + "A" * 40)])
    with pytest.raises(SeqpipeError) as e:
        read_dna(fa)
    msg = str(e.value)
    assert "bad.fa:4 record 'bad2'" in msg and "invalid character 'X' at position 7" in msg


# -- readers ----------------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
def test_fasta_reader_header_labels_plain_and_gz(tmp_path, gz):
    recs = labeled(6)
    fa = write_fasta(
        tmp_path / ("x.fa.gz" if gz else "x.fa"), [(f"{i} some text label={lab}", s) for i, s, lab in recs], gz
    )
    res = read_dna(fa)
    assert res.ids == [r[0] for r in recs]
    assert res.labels == [r[2] for r in recs]
    assert [decode(c) for c in res.codes] == [r[1] for r in recs]  # lines were joined


def test_fasta_label_by_field_number_and_sidecar_csv(tmp_path):
    recs = labeled(4)
    fa = write_fasta(tmp_path / "x.fasta", [(f"{i}|{lab}|extra", s) for i, s, lab in recs])
    assert read_dna(fa, label_field=1).labels == [r[2] for r in recs]
    fa2 = write_fasta(tmp_path / "y.fa", [(i, s) for i, s, _ in recs])
    (tmp_path / "labels.csv").write_text(
        "id,label\n" + "".join(f"{i},{'pos' if lab == '1' else 'neg'}\n" for i, _, lab in recs)
    )
    res = read_dna(fa2, labels=tmp_path / "labels.csv")
    assert res.labels == ["neg", "pos", "neg", "pos"]


def test_csv_and_tsv_readers(tmp_path):
    recs = labeled(5)
    (tmp_path / "d.csv").write_text("sequence,label\n" + "".join(f"{s},{lab}\n" for _, s, lab in recs))
    res = read_dna(tmp_path / "d.csv")
    assert res.ids == [f"row{i}" for i in range(2, 7)] and res.labels == [r[2] for r in recs]
    (tmp_path / "d.tsv").write_text("id\tseq\ty\n" + "".join(f"{i}\t{s.lower()}\t{lab}\n" for i, s, lab in recs))
    res = read_dna(tmp_path / "d.tsv", sequence_column="seq", label_column="y")
    assert res.ids == [r[0] for r in recs] and decode(res.codes[0]) == recs[0][1]


def test_folder_reader_genomic_benchmarks_layout_keeps_its_split(tmp_path):
    rng = np.random.default_rng(3)
    for split, n in (("train", 12), ("test", 4)):
        for cls in ("negative", "positive"):
            d = tmp_path / "gb" / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                (d / f"{i}.txt").write_text(rand_seq(30, rng) + "\n")
    res = read_dna(tmp_path / "gb")
    assert len(res.ids) == 32 and res.ids[0] == "train/negative/0"
    assert set(res.labels) == {"negative", "positive"}
    store = prepare_dna(tmp_path / "gb", tmp_path / "prep", val_fraction=0.25, test_fraction=0.2)
    split, ids = store.index["split"], store.index["id"]
    assert all(i.startswith("test/") for i in ids[split == SPLIT_CODE["test"]])
    assert (split == SPLIT_CODE["test"]).sum() == 8
    assert (split == SPLIT_CODE["val"]).sum() == 6  # 25% of the 12 train records of each class
    assert all(i.startswith("train/") for i in ids[split == SPLIT_CODE["val"]])
    assert store.meta["dna"]["classes"] == ["negative", "positive"] and store.meta["dna"]["split_from_source"]


def test_flat_folder_per_class(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / "f" / cls).mkdir(parents=True)
        (tmp_path / "f" / cls / "s1.txt").write_text("ACGT\nACGT\n")
    res = read_dna(tmp_path / "f")
    assert res.ids == ["a/s1", "b/s1"] and res.labels == ["a", "b"] and decode(res.codes[0]) == "ACGTACGT"


# -- bad input --------------------------------------------------------------------------------
def test_empty_sequence_error_or_skipped(tmp_path):
    fa = tmp_path / "e.fa"
    fa.write_text(">a label=0\nACGT\n>empty label=1\n>c label=1\nGGCC\n")
    with pytest.raises(SeqpipeError, match=r"e.fa:3 record 'empty': empty sequence"):
        read_dna(fa)
    res = read_dna(fa, DnaRules(strict=False))
    assert res.ids == ["a", "c"] and res.report.skipped == [{"id": "empty", "reason": "empty"}]


def test_duplicate_ids_error(tmp_path):
    fa = write_fasta(tmp_path / "d.fa", [("x label=0", "ACGT"), ("y label=1", "ACGA"), ("x label=1", "TTTT")])
    with pytest.raises(SeqpipeError, match=r"d.fa:7 record 'x': duplicate id 'x' \(first at .*d.fa:1"):
        read_dna(fa)


def test_missing_labels_error_lists_ids_or_skipped(tmp_path):
    fa = write_fasta(tmp_path / "m.fa", [("a", "ACGT"), ("b", "ACGA"), ("c", "TTTT")])
    lab = tmp_path / "lab.csv"
    lab.write_text("id,label\na,0\nc,1\n")
    with pytest.raises(SeqpipeError, match=r"lab.csv: no label for 1 record\(s\): b"):
        read_dna(fa, labels=lab)
    res = read_dna(fa, DnaRules(strict=False), labels=lab)
    assert res.ids == ["a", "c"] and res.report.skipped == [{"id": "b", "reason": "no label"}]


def test_single_class_is_an_error(tmp_path):
    fa = write_fasta(tmp_path / "one.fa", [(f"s{i} label=pos", rand_seq(20)) for i in range(10)])
    with pytest.raises(SeqpipeError, match=r"one.fa: only one class \('pos'\) in 10 records"):
        prepare_dna(fa, tmp_path / "prep")


def test_too_long_error_in_strict_mode_else_center_crop(tmp_path):
    fa = write_fasta(tmp_path / "l.fa", [("short label=0", "ACGT"), ("long label=1", "AAAA" + "CG" * 4 + "TTTT")])
    with pytest.raises(SeqpipeError, match=r"record 'long': sequence of 16 bases is longer than max_len 8"):
        read_dna(fa, DnaRules(max_len=8))
    res = read_dna(fa, DnaRules(strict=False, max_len=8))
    assert decode(res.codes[1]) == "CGCGCGCG" and res.report.cropped == ["long"]


def test_label_only_in_test_split_is_an_error(tmp_path):
    rows = "".join(f"{rand_seq(20)},{'a' if i % 2 else 'b'},train\n" for i in range(10)) + f"{rand_seq(20)},c,test\n"
    (tmp_path / "s.csv").write_text("sequence,label,split\n" + rows)
    with pytest.raises(
        SeqpipeError, match=r"label\(s\) \['c'\] occur in val/test but never in train \(e.g. record 'row12'\)"
    ):
        prepare_dna(tmp_path / "s.csv", tmp_path / "prep")


def test_unknown_format_and_missing_source(tmp_path):
    (tmp_path / "x.bam").write_bytes(b"\x00")
    with pytest.raises(SeqpipeError, match="x.bam: cannot tell the format"):
        read_dna(tmp_path / "x.bam")
    with pytest.raises(SeqpipeError, match="nope.fa: DNA source not found"):
        read_dna(tmp_path / "nope.fa")


# -- store, splits, batches -------------------------------------------------------------------
def test_store_one_byte_a_base_stratified_split_and_no_leakage(tmp_path):
    rng = np.random.default_rng(5)
    base = [rand_seq(int(rng.integers(20, 60)), rng) for _ in range(190)]
    seqs = base + base[:10]  # 10 exact duplicates (new ids) must land in their original's split
    labs = [str(i % 2) for i in range(190)] + [str(i % 2) for i in range(10)]
    (tmp_path / "d.csv").write_text(
        "id,sequence,label\n" + "".join(f"s{i},{s},{lab}\n" for i, (s, lab) in enumerate(zip(seqs, labs, strict=True)))
    )
    store = prepare_dna(tmp_path / "d.csv", tmp_path / "prep", val_fraction=0.1, test_fraction=0.2, seed=3)
    bases = store.arrays["bases"]
    assert bases.dtype == np.uint8 and len(bases) == sum(len(s) for s in seqs)
    ix = store.index
    for r in (0, 57, 199):
        assert decode(bases[ix["offset"][r] : ix["offset"][r] + ix["length"][r]]) == seqs[r]
    by_split = {
        s: {
            decode(bases[o : o + n])
            for o, n, sp in zip(ix["offset"], ix["length"], ix["split"], strict=True)
            if sp == SPLIT_CODE[s]
        }
        for s in ("train", "val", "test")
    }
    assert not (by_split["train"] & by_split["test"]) and not (by_split["train"] & by_split["val"])
    assert not (by_split["val"] & by_split["test"])
    for i in range(10):
        assert ix["split"][190 + i] == ix["split"][i]
    assert len(by_split["test"]) == 38  # 20% of the 95 distinct sequences of each class
    counts = store.meta["dna"]["class_counts"]
    assert sum(counts["test"].values()) == (ix["split"] == SPLIT_CODE["test"]).sum() >= 38
    assert store.meta["spec"]["num_classes"] == 2 and store.meta["spec"]["vocab_size"] == 6
    again = prepare_dna(tmp_path / "d.csv", tmp_path / "prep2", val_fraction=0.1, test_fraction=0.2, seed=3)
    assert (again.index["split"] == ix["split"]).all()  # deterministic from the seed


def test_reverse_complement_batch_keeps_padding_and_is_an_involution():
    x = torch.tensor([[1, 1, 2, 3, 0, 0], [4, 3, 2, 1, 5, 1]])
    lengths = torch.tensor([4, 6])
    rc = reverse_complement_batch(x, lengths)
    assert rc.tolist() == [[2, 3, 4, 4, 0, 0], [4, 5, 4, 3, 2, 1]]
    assert torch.equal(reverse_complement_batch(rc, lengths), x)


def test_collate_pads_ragged_and_rc_augments_with_probability():
    samples = [(np.array([1, 2, 3], np.uint8), 0), (np.array([1, 1, 1, 1, 4], np.uint8), 1)]
    b = DnaCollate(0.0)(samples)
    assert b["inputs"].tolist() == [[1, 2, 3, 0, 0], [1, 1, 1, 1, 4]] and b["lengths"].tolist() == [3, 5]
    assert b["targets"].tolist() == [0, 1]
    flipped = DnaCollate(1.0)(samples)
    assert flipped["inputs"].tolist() == [[2, 3, 4, 0, 0], [1, 4, 4, 4, 4]]
    aug = ReverseComplementAugment(0.5)  # the loader's per-sample augmentation: rng per (seed, epoch, index)
    n_flipped = sum(int(aug(samples[0], np.random.default_rng([0, 0, i]))[0][0] == 2) for i in range(400))
    assert 160 < n_flipped < 240
    assert all(
        aug(samples[0], np.random.default_rng([0, 0, i]))[0].tolist()
        == aug(samples[0], np.random.default_rng([0, 0, i]))[0].tolist()
        for i in range(20)
    )


def test_datamodule_train_batches_augmented_eval_batches_not(tmp_path):
    recs = labeled(60, 30)
    write_fasta(tmp_path / "x.fa", [(f"{i} label={lab}", s) for i, s, lab in recs])
    dm = DNADataModule(
        source=str(tmp_path / "x.fa"), labels=None, prepared_dir=str(tmp_path / "p"), rc_augment=1.0, batch_size=8
    )
    assert dm.spec.target == "class" and dm.spec.num_classes == 2 and dm.classes == ["0", "1"]
    val = next(iter(dm.val_dataloader()))
    codes, y, ids = dm.records("val")
    assert val["inputs"][0, : len(codes[0])].tolist() == codes[0].tolist()
    train_ds = dm.datasets["train"]
    loader = dm.train_dataloader()
    epoch, i = next(iter(loader.sampler))
    first = loader.collate_fn([loader.dataset[(epoch, i)]])
    assert first["inputs"][0].tolist() == reverse_complement(train_ds[i][0]).tolist()
    info = dm.data_info()
    assert info["domain"] == "dna" and info["classes"] == ["0", "1"] and info["rules"]["strict"] is True


# -- k-mer baseline ---------------------------------------------------------------------------
def test_kmer_features_exact_counts_and_canonical_merge():
    f = kmer_features([encode(b"AACGN"), encode(b"TT")], ks=[1, 2])
    # k=1: A A C G (N skipped) -> A 0.5, C .25, G .25; k=2: AA AC CG (GN skipped)
    assert f.shape == (2, 4 + 16)
    assert f[0, :4].tolist() == [0.5, 0.25, 0.25, 0.0]
    assert np.isclose(f[0, 4 + 0], 1 / 3) and np.isclose(f[0, 4 + 1], 1 / 3) and np.isclose(f[0, 4 + 6], 1 / 3)
    assert f[1, 4 + 15] == 1.0
    cm = canonical_map(2)
    assert cm[15] == 0 and cm[1] == 1 and cm[11] == 1  # TT->AA; AC stays; GT (=2*4+3) -> AC
    fc = kmer_features([encode(b"AAAA"), encode(b"TTTT")], ks=[3], canonical=True)
    assert np.allclose(fc[0], fc[1]) and fc.shape[1] == 32


def test_kmer_logistic_regression_finds_a_planted_kmer():
    rng = np.random.default_rng(0)
    recs, y = [], []
    for i in range(800):
        s = rand_seq(60, rng)
        if i % 2:
            p = int(rng.integers(0, 54))
            s = s[:p] + "GATTACA"[:6] + s[p + 6 :]
        recs.append(encode(s.encode()))
        y.append(i % 2)
    m = KmerLogisticRegression(max_k=6, C=0.01).fit(recs[:600], np.array(y[:600]))
    acc = (m.predict_proba(recs[600:]).argmax(1) == np.array(y[600:])).mean()
    assert acc > 0.9


# -- generated default set ------------------------------------------------------------------
def test_jaspar_motifs_load_from_the_shipped_sqlite():
    sox2, ctcf, ctcf_v1 = load_motifs(["SOX2", "CTCF", "MA0139.1"])
    assert sox2.matrix_id == "MA0143.5" and sox2.probs.shape == (7, 4)
    assert ctcf.matrix_id == "MA0139.2" and ctcf.length == 15
    assert np.allclose(ctcf.probs.sum(1), 1) and ctcf_v1.matrix_id == "MA0139.1"
    with pytest.raises(SeqpipeError, match="no JASPAR CORE matrix named 'NOPE1'"):
        load_motifs(["NOPE1"])


def test_generator_is_deterministic_balanced_and_plants_sites(tmp_path):
    cfg = MotifTaskConfig(n=300, seed=7)
    ids, seqs, labels, sites = generate(cfg)
    assert (ids, seqs, labels) == generate(MotifTaskConfig(n=300, seed=7))[:3]
    assert generate(MotifTaskConfig(n=300, seed=8))[1] != seqs
    assert len(ids) == 300 and all(len(s) == 200 and set(s) <= set("ACGT") for s in seqs)
    assert 120 < labels.count("1") < 180
    kinds = {s["kind"] for s in sites}
    assert kinds == {"composite", "lone", "apart", "swap", "decoy"}
    assert all(s["label"] == "1" for s in sites if s["kind"] == "composite")
    out = write_dataset(MotifTaskConfig(n=50, seed=1), tmp_path / "raw")
    res = read_dna(out / "sequences.fa", labels=out / "labels.csv")
    assert len(res.ids) == 50 and json.loads((out / "generation.json").read_text())["matrices"]["FOXA1"] == "MA0148.5"


def test_generator_multiclass_labels(tmp_path):
    _, _, labels, _ = generate(MotifTaskConfig(n=200, seed=0, task="multiclass"))
    assert set(labels) == {"0", "1", "2", "3"}


# -- metrics, evaluation, predict, models ---------------------------------------------------
def test_classification_metrics_binary_and_multiclass_exact_values():
    from seqpipe.domains.dna.task import classification_metrics

    y = np.array([0, 0, 1, 1])
    p = np.array([[0.9, 0.1], [0.4, 0.6], [0.65, 0.35], [0.2, 0.8]])
    m = classification_metrics(y, p)
    assert m["test_auroc"] == 0.75 and m["test_accuracy"] == 0.5 and m["test_balanced_accuracy"] == 0.5
    assert np.isclose(m["test_auprc"], (1 + 2 / 3) / 2)
    y3 = np.array([0, 1, 2, 2])
    p3 = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    m3 = classification_metrics(y3, p3, suffix="_x")
    assert m3["test_accuracy_x"] == 0.75 and np.isclose(m3["test_balanced_accuracy_x"], (1 + 1 + 0.5) / 3)
    # one-vs-rest AUROCs: class 0: 1, class 1: 1, class 2: (1 + 1 + 0.5 + 0.5) / 4 (its 0.1 ties two negatives)
    assert np.isclose(m3["test_auroc_x"], (1 + 1 + 0.75) / 3)


def _tiny_task(tmp_path: Path, n: int = 240, classes: int = 2, length: int = 40, seed: int = 0) -> Path:
    """Class k>0 carries a planted 6-mer of its own (forward or reverse complement); class 0 none."""
    rng = np.random.default_rng(seed)
    kmers = ["GATTCA", "CCGCGG", "TTAACG"]
    recs = []
    for i in range(n):
        k = i % classes
        s = rand_seq(length, rng)
        if k:
            m = kmers[k - 1] if rng.random() < 0.5 else decode(reverse_complement(encode(kmers[k - 1].encode())))
            p = int(rng.integers(0, length - 6))
            s = s[:p] + m + s[p + 6 :]
        recs.append((f"s{i} label=c{k}", s))
    return write_fasta(tmp_path / "tiny.fa", recs)


def _train(model, dm, steps: int) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    it = iter(dm.train_dataloader())
    for _ in range(steps):
        try:
            b = next(it)
        except StopIteration:
            it = iter(dm.train_dataloader())
            b = next(it)
        loss = torch.nn.functional.cross_entropy(model(b["inputs"], b["lengths"])[0], b["targets"])
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("classes", [2, 3])
def test_crnn_learns_binary_and_multiclass_and_evaluate_reports_rc_on_off(tmp_path, classes):
    from seqpipe.domains.dna.task import baselines, evaluate
    from seqpipe.models.crnn import CRNN

    torch.manual_seed(0)
    fa = _tiny_task(tmp_path, n=400, classes=classes)
    dm = DNADataModule(
        source=str(fa),
        labels=None,
        prepared_dir=str(tmp_path / "p"),
        batch_size=32,
        rc_augment=0.5,
        val_fraction=0.15,
        test_fraction=0.25,
    )
    model = CRNN(
        dm.spec.to_dict(),
        conv_channels=[16],
        kernel_size=7,
        time_pool=[2],
        hidden_size=16,
        bidirectional=True,
        cell="lstm",
        data_info=dm.data_info(),
    )
    _train(model, dm, 400)
    cfg = {
        "name": "tiny",
        "evaluate": {
            "kmer_ks": [2, 3],
            "kmer_C": [0.1],
            "kmer_canonical": [True],
            "rc_average": True,
            "pos_lr_C": [0.1],
            "gbt_depth": [2],
        },
    }
    base = baselines(dm, cfg)
    ev = evaluate(model, dm, cfg, base, tmp_path / "rep")
    m = ev.model
    assert ev.primary_metric == "test_auroc" and ev.direction == "higher"
    assert m["test_auroc"] == m["test_auroc_rcavg"] and m["test_sequences"] == 100
    assert m["test_auroc_rcavg"] > 0.9 and m["test_accuracy_rcavg"] > 0.75  # chance: 0.5 AUROC, 1/classes accuracy
    assert set(base["baselines"]) == {"kmer_lr", "pos_lr", "pos_gbt", "majority"}
    assert base["baselines"]["majority"]["test_auroc"] == 0.5
    # the planted 6-mer moves and flips strand: k-mer counts see it, one-hot-by-position models barely do
    assert base["baselines"]["kmer_lr"]["test_auroc"] > base["baselines"]["pos_lr"]["test_auroc"]
    assert len(base["test_probs"]["kmer_lr"]) == 100 and base["choices"]["kmer_lr"]["canonical"] is True
    assert ev.extra["strand"]["rc_average_used"] is True and ev.extra["strand"]["rc_augment"] == 0.5
    roc = (tmp_path / "rep" / "roc.csv").read_text().splitlines()
    assert roc[0] == "fpr,tpr" and roc[1] == "0.0,0.0" and roc[-1] == "1.0,1.0"
    assert (tmp_path / "rep" / "roc.png").stat().st_size > 5000
    best = max(base["baselines"], key=lambda b: base["baselines"][b]["test_auroc"])
    assert ev.margin["vs"] == best and ev.margin["units"] == 100  # AUROC recomputed on resampled sequences
    assert ev.margin["value"] == pytest.approx(m["test_auroc"] - base["baselines"][best]["test_auroc"], abs=1e-4)
    assert ev.margin["ci95"][0] <= ev.margin["value"] <= ev.margin["ci95"][1]
    off = evaluate(model, dm, {**cfg, "evaluate": {**cfg["evaluate"], "rc_average": False}}, base, tmp_path / "rep2")
    assert off.model["test_auroc"] == off.model["test_auroc_fwd"] == m["test_auroc_fwd"]


def test_predict_reads_fasta_and_averages_both_strands(tmp_path):
    from seqpipe.domains.dna.task import predict, predict_proba
    from seqpipe.models import RecurrentModel

    torch.manual_seed(0)
    fa = _tiny_task(tmp_path, n=60)
    dm = DNADataModule(source=str(fa), labels=None, prepared_dir=str(tmp_path / "p"), rc_augment=0.5)
    model = RecurrentModel(
        dm.spec.to_dict(),
        cell="gru",
        hidden_size=8,
        num_layers=1,
        one_hot=True,
        bidirectional=True,
        pooling="mean",
        data_info=dm.data_info(),
    )
    query = write_fasta(tmp_path / "q.fa", [("q1", "ACGTTGCAAC" * 3), ("q2 label=c1", "acgtnnGATTCAacgt")])
    out = predict(model, [str(query)])
    assert [r["id"] for r in out] == ["q1", "q2"] and out[1]["label"] == "c1" and "label" not in out[0]
    fwd, rc = predict_proba(model, [encode(b"ACGTTGCAAC" * 3)])
    assert np.allclose(list(out[0]["probabilities"].values()), ((fwd + rc) / 2)[0], atol=1e-6)
    assert out[0]["predicted"] in ("c0", "c1") and out[0]["strands"] == "both"
    # trained without reverse-complement augmentation (a strand-specific task): forward strand only
    model.hparams["data_info"] = {**model.hparams["data_info"], "rc_augment": 0.0}
    fwd_only = predict(model, [str(query)])[0]
    assert fwd_only["strands"] == "forward"
    assert np.allclose(list(fwd_only["probabilities"].values()), fwd[0], atol=1e-6)
    bad = write_fasta(tmp_path / "bad.fa", [("z", "ACGTZ")])
    with pytest.raises(SeqpipeError, match=r"bad.fa:1 record 'z': invalid character 'Z' at position 5"):
        predict(model, [str(bad)])


@pytest.mark.slow
def test_dna_stages_end_to_end_fast_profile(in_tmp):
    """generate -> preprocess -> baselines -> fit -> evaluate -> predict through the real CLI stages."""
    import shutil

    from seqpipe import stages
    from seqpipe.config import load_config
    from seqpipe.predict import predict

    repo = Path(__file__).resolve().parents[3]
    shutil.copytree(repo / "pipelines" / "dna", in_tmp / "pipelines" / "dna")
    write_dataset(MotifTaskConfig(n=400, seed=0), in_tmp / "data" / "raw" / "dna")
    cfg = load_config("pipelines/dna/crnn.yaml", profile="fast")
    stages.preprocess(cfg)
    stages.baselines(cfg)
    stages.fit(cfg)
    stages.evaluate(cfg)
    doc = json.loads(Path("reports/dna-crnn/evaluation.json").read_text())
    assert doc["primary_metric"] == "test_auroc" and doc["domain"] == "dna"
    assert {"test_auroc_fwd", "test_auroc_rcavg", "test_auprc", "test_accuracy"} <= set(doc["model"])
    assert (
        doc["best_baseline"] in ("kmer_lr", "pos_lr", "pos_gbt", "majority")
        and Path("reports/dna-crnn/roc.png").exists()
    )
    res = predict("models/dna-crnn/best.ckpt", ["data/raw/dna/sequences.fa"], echo=False)
    assert len(res) == 400 and set(res[0]["probabilities"]) == {"0", "1"}
