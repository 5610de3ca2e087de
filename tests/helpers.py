"""Builders several test files share: a tiny word corpus and the config of a small text model trained on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

WORDS = ["romeo", "juliet", "thou", "art", "fair", "night", "love", "the", "o", "and"]


def write_corpus(d: Path, n_words: int) -> str:
    """``n_words`` words drawn with seed 0 into ``d/corpus.txt`` (its name, relative to ``d``, is returned)."""
    (d / "corpus.txt").write_text(" ".join(np.random.default_rng(0).choice(WORDS, n_words)) + "\n")
    return "corpus.txt"


def text_experiment(prepared_dir: str, seq_len: int, batch_size: int, **model_args: Any) -> dict[str, Any]:
    """The domain, data and model sections of a RecurrentModel with truncated BPTT on ``corpus.txt``."""
    return {
        "domain": "text",
        "data": {
            "class_path": "seqpipe.domains.text.TextDataModule",
            "init_args": {
                "source": "corpus.txt",
                "prepared_dir": prepared_dir,
                "seq_len": seq_len,
                "batch_size": batch_size,
                "tbptt": True,
            },
        },
        "model": {"class_path": "seqpipe.models.RecurrentModel", "init_args": {**model_args, "tbptt": True}},
    }
