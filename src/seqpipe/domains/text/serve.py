"""Serving a text model: a prompt -> generated text, or a text -> its bits per character.

One row a request. A row with ``prompt`` (and optionally ``max_chars``, ``temperature``, ``top_k``, ``seed``) is
continued by ``generate`` (the same sampler as `seqpipe generate`); a row with ``text`` is scored: every
character after the first, predicted from all the text before it. Characters outside the model's vocabulary are
an error, as in `seqpipe generate`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch

from seqpipe.domains.text.generate import generate
from seqpipe.domains.text.prepare import Vocabulary, tokenize
from seqpipe.errors import SeqpipeError

DEFAULTS = {"max_chars": 200, "temperature": 0.8, "top_k": None, "seed": 0}
EXAMPLE = "romeo:\nbut soft, what light through yonder window breaks?"


def serve(model: torch.nn.Module, df: pd.DataFrame) -> pd.DataFrame:
    """``generated`` for the rows with a prompt; ``bits_per_char`` and ``chars_scored`` for the rows with a text."""
    if not {"prompt", "text"} & set(df.columns):
        raise SeqpipeError(
            f"a text model needs a `prompt` or a `text` column, got {list(df.columns)}",
            where="request",
            fix='e.g. {"dataframe_records": [{"prompt": "romeo:", "max_chars": 100}]}',
        )
    vocab = Vocabulary.from_meta({"text": model.hparams.get("data_info") or {}})
    out: dict[str, list[Any]] = {}
    if "prompt" in df:
        out["generated"] = [None if _missing(p) else _generate(model, vocab, str(p), row) for p, row in _rows(df)]
    if "text" in df:
        scored = [(None, None) if _missing(t) else bits_per_char(model, vocab, str(t)) for t in df["text"]]
        out["bits_per_char"] = [b for b, _ in scored]
        out["chars_scored"] = [n for _, n in scored]
    return pd.DataFrame(out)


def _rows(df: pd.DataFrame) -> Any:
    return zip(df["prompt"], df.to_dict("records"), strict=True)


def _missing(value: Any) -> bool:
    return value is None or (np.ndim(value) == 0 and bool(pd.isna(value)))


def _option(row: dict[str, Any], name: str) -> Any:
    value = row.get(name)
    return DEFAULTS[name] if _missing(value) else value


def _generate(model: torch.nn.Module, vocab: Vocabulary, prompt: str, row: dict[str, Any]) -> str:
    try:
        top_k = _option(row, "top_k")
        options = {
            "length": int(_option(row, "max_chars")),
            "temperature": float(_option(row, "temperature")),
            "top_k": None if top_k is None else int(top_k),
            "seed": int(_option(row, "seed")),
        }
    except (TypeError, ValueError) as e:
        raise SeqpipeError(f"max_chars, temperature, top_k and seed must be numbers ({e})", where="request") from e
    return generate(model, vocab, prompt, **options)


@torch.no_grad()
def bits_per_char(model: torch.nn.Module, vocab: Vocabulary, text: str) -> tuple[float, int]:
    """(bits per character of every token after the first, characters scored) of ``text`` read in one pass."""
    ids = vocab.encode(text)
    if len(ids) < 2:
        raise SeqpipeError(f"text {text!r} is too short to score", where="text", fix="send at least two characters")
    model.eval()
    logits, _ = model(torch.tensor([ids[:-1]]))
    log2p = torch.log_softmax(logits[0].float(), -1).gather(-1, torch.tensor(ids[1:])[:, None]) / math.log(2)
    chars = sum(len(t) for t in tokenize(text, vocab.level, vocab.lowercase)[1:])
    return float(-log2p.sum()) / chars, int(chars)


def serve_example(info: dict[str, Any]) -> pd.DataFrame:
    """A generation row and a scoring row, written in the model's own vocabulary."""
    vocab = Vocabulary.from_meta({"text": info})
    sample = EXAMPLE
    if any(t not in vocab.ids for t in tokenize(sample, vocab.level, vocab.lowercase)):  # other text: its own tokens
        tokens = [t for t in vocab.tokens[1:] if t.strip()]
        sample = ("" if vocab.level == "char" else " ").join(np.random.default_rng(0).choice(tokens, 24))
    return pd.DataFrame(
        {
            "prompt": [sample[: sample.find(":") + 1 or 6], None],
            "max_chars": pd.array([40, None], dtype="Int64"),
            "temperature": [0.8, None],
            "top_k": pd.array([5, None], dtype="Int64"),
            "seed": pd.array([0, None], dtype="Int64"),
            "text": [None, sample],
        }
    )
