"""The shipped splice-junction set, the position-aware baselines, and strand handling chosen on val."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from seqpipe.config import load_config
from seqpipe.domains.dna.datamodule import DNADataModule
from seqpipe.domains.dna.position import PositionalBoosting, PositionalLogisticRegression, onehot_positions
from seqpipe.domains.dna.source import decode, encode
from seqpipe.errors import SeqpipeError

REPO = Path(__file__).resolve().parents[3]
SPLICE = REPO / "data" / "raw" / "splice" / "splice.csv"


@pytest.fixture(scope="module")
def splice_dm(tmp_path_factory) -> DNADataModule:
    cfg = load_config(REPO / "pipelines" / "splice" / "base.yaml")
    args = {
        **cfg["data"]["init_args"],
        "source": str(SPLICE),
        "prepared_dir": str(tmp_path_factory.mktemp("splice") / "prep"),
    }
    dm = DNADataModule(**args)
    dm.prepare_data()
    dm.setup()
    return dm


# -- the shipped data -------------------------------------------------------------------------
def test_shipped_splice_csv_shape_classes_and_donor_signal():
    rows = list(csv.DictReader(SPLICE.open()))
    assert len(rows) == 3186 and list(rows[0]) == ["id", "sequence", "label"]
    counts = {c: sum(r["label"] == c for r in rows) for c in ("EI", "IE", "N")}
    assert counts == {"EI": 767, "IE": 765, "N": 1654}
    assert all(len(r["sequence"]) == 60 and set(r["sequence"]) <= set("ACGT") for r in rows)
    assert sum(r["sequence"][30:32] == "GT" for r in rows if r["label"] == "EI") == 759  # donor GT at 31-32
    assert 150_000 < SPLICE.stat().st_size < 300_000


def test_rebuild_script_decodes_three_bits_a_base_and_names_bad_rows():
    spec = importlib.util.spec_from_file_location("rebuild", REPO / "data" / "raw" / "splice" / "rebuild.py")
    rebuild = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rebuild)
    bits = np.array([[1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]])
    assert rebuild.decode(bits) == ["ACGT"]
    with pytest.raises(ValueError, match=r"row 1, position 2: bits \(1, 1, 0\)"):
        rebuild.decode(np.array([[0, 0, 0, 1, 1, 0]]))


def test_splice_store_splits_are_stratified_and_disjoint(splice_dm):
    dm = splice_dm
    assert dm.classes == ["EI", "IE", "N"] and dm.spec.num_classes == 3 and dm.spec.max_len == 60
    seqs = {s: {decode(c) for c in dm.records(s)[0]} for s in ("train", "val", "test")}
    assert not (seqs["train"] & seqs["test"]) and not (seqs["train"] & seqs["val"]) and not (seqs["val"] & seqs["test"])
    counts = dm.meta["dna"]["class_counts"]
    for s in ("val", "test"):
        share = counts[s]["N"] / sum(counts[s].values())
        assert abs(share - 1654 / 3186) < 0.03
    assert dm.rc_augment == 0.0 and dm.data_info()["rc_augment"] == 0.0  # strand-specific task


# -- position-aware baselines -----------------------------------------------------------------
def test_onehot_positions_exact_values():
    X = onehot_positions([encode(b"ACGN"), encode(b"TT"), encode(b"GGGGGG")], length=4)
    assert X.shape == (3, 16) and X.dtype == np.float32
    assert X[0].reshape(4, 4).tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]  # N: no base
    assert X[1].reshape(4, 4).tolist() == [[0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]]  # padded
    assert X[2].reshape(4, 4)[:, 2].tolist() == [1, 1, 1, 1]  # cut at length


def test_positional_models_learn_a_fixed_position_signal():
    rng = np.random.default_rng(0)
    recs, y = [], []
    for i in range(400):
        s = rng.integers(1, 5, 30).astype(np.uint8)
        if i % 2:
            s[10:12] = [3, 4]  # G T at 11-12 marks class 1; class 0 has neither G at 11 nor T at 12
        else:
            s[10:12] = [rng.choice([1, 2, 4]), rng.choice([1, 2, 3])]
        recs.append(s)
        y.append(i % 2)
    y = np.array(y)
    lr = PositionalLogisticRegression(C=1.0).fit(recs[:300], y[:300])
    assert lr.length == 30 and (lr.predict_proba(recs[300:]).argmax(1) == y[300:]).mean() > 0.95
    w = lr.weights()[0]  # (30, 4): the weight of G at position 11 and T at 12 stand out
    assert w[10, 2] == w.max() or w[11, 3] == w.max()
    gbt = PositionalBoosting(max_depth=2).fit(recs[:300], y[:300])
    assert (gbt.predict_proba(recs[300:]).argmax(1) == y[300:]).mean() > 0.95


def _cfg(**evaluate):
    return {
        "name": "t",
        "seed": 0,
        "evaluate": {"kmer_ks": [3], "kmer_C": [0.1], "kmer_canonical": [False], "gbt_depth": [2], **evaluate},
    }


def test_position_lr_beats_kmers_on_the_splice_set(splice_dm):
    from seqpipe.domains.dna.task import baselines

    base = baselines(splice_dm, _cfg(pos_lr_C=[0.01, 0.1]))
    b = base["baselines"]
    assert b["pos_lr"]["test_accuracy"] > 0.9 and b["pos_lr"]["test_auroc"] > 0.98
    assert b["pos_gbt"]["test_accuracy"] > 0.9
    assert b["kmer_lr"]["test_accuracy"] < 0.8 < b["pos_lr"]["test_accuracy"]  # position matters here
    assert b["majority"]["test_auroc"] == 0.5
    assert [row["C"] for row in base["grids"]["pos_lr"]] == [0.01, 0.1]
    assert set(base["choices"]) == {"kmer_lr", "pos_lr", "pos_gbt"} and len(base["test_ids"]) == len(
        base["test_probs"]["pos_lr"]
    )


def test_baselines_choose_on_val_never_on_test(splice_dm, monkeypatch):
    """Scrambling the test labels changes the test scores but no choice and no val score."""
    from seqpipe.domains.dna.task import baselines

    cfg = _cfg(pos_lr_C=[0.001, 0.01, 1.0], baselines=["pos_lr", "pos_gbt"])
    clean = baselines(splice_dm, cfg)
    records = splice_dm.records

    def scrambled(split):
        codes, y, ids = records(split)
        return (codes, np.random.default_rng(1).permutation(y), ids) if split == "test" else (codes, y, ids)

    monkeypatch.setattr(splice_dm, "records", scrambled)
    noisy = baselines(splice_dm, cfg)
    assert noisy["choices"] == clean["choices"] and noisy["grids"] == clean["grids"]
    assert noisy["baselines"]["pos_lr"]["test_accuracy"] < clean["baselines"]["pos_lr"]["test_accuracy"] - 0.3


def test_unknown_baseline_is_an_error(splice_dm):
    from seqpipe.domains.dna.task import baselines

    with pytest.raises(SeqpipeError, match=r"evaluate.baselines: unknown DNA baseline\(s\) \['pwm'\]"):
        baselines(splice_dm, _cfg(baselines=["pwm"]))


# -- strand handling --------------------------------------------------------------------------
class FirstBaseModel(torch.nn.Module):
    """A strand-specific 'model': class EI when the sequence starts with the first base of most EI records."""

    def __init__(self, base_code: int):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.code = base_code

    def forward(self, x, lengths=None):
        hit = (x[:, 0] == self.code).float()
        return torch.stack([3 * hit, torch.zeros_like(hit), 1 - hit], 1) + self.w, None


def test_rc_average_auto_picks_the_strand_on_val(splice_dm, tmp_path):
    from seqpipe.domains.dna.task import evaluate

    base = {"baselines": {"majority": {"test_auroc": 0.5}}, "test_ids": []}
    codes, y, _ = splice_dm.records("train")
    first = np.array([c[0] for c in codes])
    code = int(np.bincount(first[y == 0], minlength=6).argmax())
    model = FirstBaseModel(code)
    ev = evaluate(model, splice_dm, {"name": "t", "evaluate": {"rc_average": "auto"}}, base, tmp_path)
    s = ev.extra["strand"]
    assert s["rc_average"] == "auto" and s["rc_augment"] == 0.0
    assert s["rc_average_used"] is (s["val_auroc_rcavg"] > s["val_auroc_fwd"])
    key = "test_auroc_rcavg" if s["rc_average_used"] else "test_auroc_fwd"
    assert ev.model["test_auroc"] == ev.model[key]
    forced = evaluate(model, splice_dm, {"name": "t", "evaluate": {"rc_average": True}}, base, tmp_path)
    assert (
        forced.extra["strand"]["rc_average_used"] is True
        and forced.model["test_auroc"] == forced.model["test_auroc_rcavg"]
    )
    with pytest.raises(SeqpipeError, match="evaluate.rc_average must be true, false or auto"):
        evaluate(model, splice_dm, {"name": "t", "evaluate": {"rc_average": "sometimes"}}, base, tmp_path)


# -- configs ----------------------------------------------------------------------------------
@pytest.mark.parametrize("domain", ["dna", "splice"])
def test_dna_configs_budget_in_epochs_and_set_strand_per_dataset(domain):
    for path in sorted((REPO / "pipelines" / domain).glob("*.yaml")):
        text = path.read_text()
        assert "max_time" not in text, f"{path.name}: budgets are in epochs or steps"
        cfg = load_config(path)
        assert "rc_augment" in cfg["data"]["init_args"], f"{path.name}: strand handling is set per dataset"
        assert cfg["trainer"].get("max_epochs"), f"{path.name}: an epoch budget"
        if "crnn" in path.name:
            assert cfg["trainer"]["max_epochs"] >= 20 and cfg["fit"].get("early_stopping_patience")
    splice = load_config(REPO / "pipelines" / "splice" / "crnn.yaml")
    assert splice["name"] == "splice-crnn" and splice["domain"] == "dna"
    assert splice["evaluate"]["baseline_key"] == "splice" and splice["data"]["init_args"]["rc_augment"] == 0.0


@pytest.mark.slow
def test_splice_stages_end_to_end_fast_profile(in_tmp):
    """preprocess -> baselines -> fit -> evaluate -> predict on the shipped CSV through the real stages."""
    import json
    import shutil

    from seqpipe import stages
    from seqpipe.predict import predict

    shutil.copytree(REPO / "pipelines" / "splice", in_tmp / "pipelines" / "splice")
    (in_tmp / "data" / "raw" / "splice").mkdir(parents=True)
    shutil.copy(SPLICE, in_tmp / "data" / "raw" / "splice" / "splice.csv")
    cfg = load_config("pipelines/splice/crnn.yaml", profile="fast")
    stages.preprocess(cfg)
    assert stages.baselines(cfg) == Path("reports/baselines/splice.json")
    stages.fit(cfg)
    stages.evaluate(cfg)
    doc = json.loads(Path("reports/splice-crnn/evaluation.json").read_text())
    assert doc["primary_metric"] == "test_auroc" and set(doc["baselines"]) == {
        "kmer_lr",
        "pos_lr",
        "pos_gbt",
        "majority",
    }
    assert (
        doc["best_baseline"] in ("pos_lr", "pos_gbt") and doc["baselines"][doc["best_baseline"]]["test_accuracy"] > 0.9
    )
    assert doc["strand"]["rc_augment"] == 0.0 and doc["strand"]["rc_average"] == "auto"
    res = predict("models/splice-crnn/best.ckpt", ["data/raw/splice/splice.csv"], echo=False)
    assert len(res) == 3186 and set(res[0]["probabilities"]) == {"EI", "IE", "N"} and res[0]["strands"] == "forward"


def test_baselines_report_is_the_same_bytes_twice_and_has_no_wall_time(in_tmp):
    import shutil

    from seqpipe import stages

    shutil.copytree(REPO / "pipelines" / "splice", in_tmp / "pipelines" / "splice")
    (in_tmp / "data" / "raw" / "splice").mkdir(parents=True)
    shutil.copy(SPLICE, in_tmp / "data" / "raw" / "splice" / "splice.csv")
    cfg = load_config("pipelines/splice/base.yaml", profile="fast")
    stages.preprocess(cfg)
    first = stages.baselines(cfg).read_bytes()
    assert stages.baselines(cfg).read_bytes() == first
    assert b"seconds" not in first


def test_splice_crnn_config_builds_its_position_aware_head_on_the_real_data(splice_dm):
    from seqpipe.models.crnn import CRNN

    cfg = load_config(REPO / "pipelines" / "splice" / "crnn.yaml")
    args = cfg["model"]["init_args"]
    assert args["pooling"] == "flatten"  # the junction sits at 30|31: position is the signal
    model = CRNN(spec=splice_dm.spec.to_dict(), data_info=splice_dm.data_info(), **args).eval()
    assert model.pool.steps == 30 and model.head.in_features == 30 * 128
    batch = next(iter(splice_dm.val_dataloader()))
    assert model(batch["inputs"], batch["lengths"])[0].shape == (batch["inputs"].shape[0], 3)
    # the motif set (motifs anywhere in 200 bp) keeps position-free mean pooling
    assert load_config(REPO / "pipelines" / "dna" / "crnn.yaml")["model"]["init_args"]["pooling"] == "mean"
