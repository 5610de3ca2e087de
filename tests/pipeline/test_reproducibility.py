"""Same config + seed + machine = the same bits: two `seqpipe fit` runs give identical weights.

One small config a model class (RecurrentModel with truncated BPTT, CRNN with reverse-complement
augmentation and dropout, SeedGroup, Seq2Seq with scheduled sampling, the BiLSTM on random blanks), run
through the CLI exactly as the DVC stages run it. A third run with another seed must differ, so the
test cannot pass by training nothing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from helpers import text_experiment, write_corpus
from seqpipe.cli import main


def text_corpus(d: Path) -> str:
    return write_corpus(d, 4000)


def dna_fasta(d: Path) -> str:
    rng = np.random.default_rng(1)
    recs = []
    for i in range(80):
        s = "".join(rng.choice(list("ACGT"), 40))
        if i % 2:
            s = s[:10] + "TATAAT" + s[16:]
        recs.append(f">r{i} label={i % 2}\n{s}\n")
    (d / "x.fa").write_text("".join(recs))
    return "x.fa"


def stock_csvs(d: Path) -> str:
    raw = d / "raw"
    raw.mkdir()
    for name, seed in (("AAA", 0), ("BBB", 1)):
        rng = np.random.default_rng(seed)
        close = 50 * np.exp(np.cumsum(rng.normal(0, 1, 700) / 100))
        pd.DataFrame(
            {
                "Date": pd.bdate_range("2004-01-01", periods=700).strftime("%Y-%m-%d"),
                "Open": close,
                "High": close * 1.01,
                "Low": close * 0.99,
                "Close": close,
                "Volume": rng.integers(1_000_000, 5_000_000, 700),
            }
        ).to_csv(raw / f"{name}.csv", index=False)
    return "raw"


TRAINER = {"accelerator": "cpu", "enable_progress_bar": False, "limit_val_batches": 2}
STOCKS = {
    "class_path": "seqpipe.domains.stocks.StockDataModule",
    "init_args": {
        "source": "raw",
        "prepared_dir": "prep",
        "lookback": 15,
        "horizon": 3,
        "batch_size": 32,
        "features": ["log_return", "hl_range"],
        "val_start": "2005-09-01",
        "test_start": "2006-03-01",
    },
}
CASES = {
    "recurrent-tbptt": (
        text_corpus,
        "text",
        {
            **text_experiment(
                "prep",
                seq_len=16,
                batch_size=8,
                cell="lstm",
                hidden_size=16,
                num_layers=2,
                dropout=0.2,
                embedding_dim=8,
            ),
            "trainer": {"max_steps": 25, "val_check_interval": 10, **TRAINER},
            "fit": {"grad_every_n_steps": 10},
        },
    ),
    "crnn-rc-augment": (
        dna_fasta,
        "dna",
        {
            "data": {
                "class_path": "seqpipe.domains.dna.DNADataModule",
                "init_args": {
                    "source": "x.fa",
                    "labels": None,
                    "prepared_dir": "prep",
                    "rc_augment": 0.5,
                    "batch_size": 8,
                },
            },
            "model": {
                "class_path": "seqpipe.models.crnn.CRNN",
                "init_args": {
                    "conv_channels": [8],
                    "kernel_size": 5,
                    "time_pool": [2],
                    "cell": "lstm",
                    "hidden_size": 8,
                    "bidirectional": True,
                    "dropout": 0.3,
                },
            },
            "trainer": {"max_epochs": 3, **TRAINER},
            "fit": {"grad_every_n_steps": 100000},
        },
    ),
    "seed-group": (
        stock_csvs,
        "stocks",
        {
            "data": STOCKS,
            "model": {
                "class_path": "seqpipe.models.seeds.SeedGroup",
                "init_args": {"n_seeds": 2, "cell": "gru", "hidden_size": 8, "loss": "l1", "dropout": 0.1},
            },
            "trainer": {"max_epochs": 2, **TRAINER},
            "fit": {"grad_every_n_steps": 100000},
        },
    ),
    "seq2seq-scheduled-sampling": (
        stock_csvs,
        "forecast",
        {
            "data": {**STOCKS, "init_args": {**STOCKS["init_args"], "target": "volatility"}},
            "model": {
                "class_path": "seqpipe.models.seq2seq.Seq2Seq",
                "init_args": {
                    "cell": "lstm",
                    "hidden_size": 8,
                    "attention": "luong",
                    "teacher_forcing": 1.0,
                    "min_teacher_forcing": 0.3,
                    "decay_steps": 10,
                    "loss": "l1",
                },
            },
            "trainer": {"max_epochs": 2, **TRAINER},
            "fit": {"grad_every_n_steps": 100000},
        },
    ),
    "bilstm-random-blanks": (
        text_corpus,
        "fill_blank",
        {
            "data": {
                "class_path": "seqpipe.domains.fill_blank.FillBlankDataModule",
                "init_args": {
                    "source": "corpus.txt",
                    "prepared_dir": "prep",
                    "seq_len": 32,
                    "spans": 2,
                    "margin": 4,
                    "batch_size": 8,
                },
            },
            "model": {
                "class_path": "seqpipe.models.RecurrentModel",
                "init_args": {
                    "cell": "lstm",
                    "hidden_size": 8,
                    "num_layers": 1,
                    "embedding_dim": 8,
                    "bidirectional": True,
                    "dropout": 0.2,
                },
            },
            "trainer": {"max_steps": 20, "val_check_interval": 10, **TRAINER},
            "fit": {"grad_every_n_steps": 100000},
        },
    ),
}


def fit_weights(d: Path, cfg: dict, seed: int) -> dict[str, torch.Tensor]:
    (d / "exp.yaml").write_text(yaml.safe_dump({**cfg, "seed": seed}))
    shutil.rmtree(d / "models", ignore_errors=True)
    assert main(["fit", "--config", "exp.yaml"]) == 0
    run = json.loads((d / f"models/{cfg['name']}/run.json").read_text())
    assert run["global_steps"] > 0 and run["truncated_by_time"] is False
    return torch.load(d / f"models/{cfg['name']}/last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_seed_same_weights(case: str, in_tmp: Path):
    make_data, domain, cfg = CASES[case]
    make_data(in_tmp)
    cfg = {"name": f"repro-{case}", "domain": domain, **cfg}
    first = fit_weights(in_tmp, cfg, seed=3)
    second = fit_weights(in_tmp, cfg, seed=3)
    assert first.keys() == second.keys()
    for k in first:
        assert torch.equal(first[k], second[k]), f"{case}: {k} differs between two runs with the same seed"
    other = fit_weights(in_tmp, cfg, seed=4)
    assert any(not torch.equal(first[k], other[k]) for k in first), "another seed gave the same weights"
