"""Fill in the blank: masked-character accuracy and bits per masked character on the test blanks.

Every scorer sees the same test windows with the same blanks (masks are a function of seed, split
and window index). Metrics, over all masked characters of the test split:

    test_masked_acc         share of masked characters predicted exactly (argmax)
    test_bits_per_char      mean -log2 P(true character) at masked positions
    test_span_acc           share of blanks (whole words) with every character right

Models (``evaluate``): the checkpoint under test, and every checkpoint listed in
``evaluate.compare`` (e.g. the unidirectional LSTM beside the BiLSTM), so one metrics file carries
the comparison.

Baseline: the Kneser-Ney character n-gram fitted on the train split, reading the LEFT context only
(order chosen on the validation blanks). Two variants:
    kn<o>_left         does not peek: inside a blank it predicts from its own (beam-approximated)
                       marginal over the earlier blank characters, as the models see only masks there
    kn<o>_left_oracle  conditions on the true earlier blank characters: an optimistic bound that
                       reads letters no model sees, so it is reported apart (extra.ngram_oracle_bound),
                       not as a baseline
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqpipe.domains.fill_blank.datamodule import IGNORE, MaskedWindows
from seqpipe.domains.fill_blank.ngram_fill import ngram_logps
from seqpipe.domains.text.ngram import KneserNeyLM
from seqpipe.errors import SeqpipeError
from seqpipe.evaluation import Evaluation
from seqpipe.evaluation.margin import best_baseline, unit_margin
from seqpipe.models.loading import load_model

log = logging.getLogger(__name__)

# the `evaluate:` keys this domain reads (anything else in a config is an error)
# what evaluate writes under reports/<experiment>/ (".": the whole folder), for `seqpipe dvc-yaml`
DVC_REPORTS = {"outs": ["."]}
EVALUATE_KEYS = {
    "max_windows": "score at most this many test windows",
    "ngram_max_order": "left-context n-gram orders tried",
    "ngram_beam": "n-gram beam width over a blank",
    "compare": "other checkpoints scored beside the model: {name: path}",
}


# -- the blanks of a split, as flat stream positions -----------------------------------------
def blanks(ds: MaskedWindows, limit: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(absolute start, length, window index) of every blank of the first ``limit`` windows."""
    n = len(ds) if limit is None else min(len(ds), int(limit))
    starts, lengths, win = [], [], []
    for i in range(n):
        s = ds.start(i)
        for a, k in ds.spans(i):
            starts.append(s + a)
            lengths.append(k)
            win.append(i)
    return np.array(starts, np.int64), np.array(lengths, np.int64), np.array(win, np.int64)


def scores_from_logp(logp_true: np.ndarray, correct: np.ndarray, span_of: np.ndarray) -> dict[str, float]:
    """Metrics from per-masked-character log2 P(true), hit flags and the blank each belongs to."""
    per_span = np.bincount(
        span_of, weights=(~correct).astype(float), minlength=int(span_of.max()) + 1 if len(span_of) else 0
    )
    return {
        "test_masked_acc": float(correct.mean()),
        "test_bits_per_char": float(-logp_true.mean()),
        "test_span_acc": float((per_span == 0).mean()),
        "test_masked_chars": float(len(correct)),
        "test_blanks": float(len(per_span)),
    }


# -- models -----------------------------------------------------------------------------------
def model_scores(model: torch.nn.Module, ds: MaskedWindows, n_windows: int, batch_size: int = 256) -> dict[str, float]:
    """Score a per-step model on the masked positions of the first ``n_windows`` windows of ``ds``."""
    return scores_from_logp(*model_logps(model, ds, n_windows, batch_size))


@torch.no_grad()
def model_logps(
    model: torch.nn.Module, ds: MaskedWindows, n_windows: int, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log2 P(true), hit and blank id of every masked character of the first ``n_windows`` windows."""
    from seqpipe.domains.fill_blank.datamodule import collate_masked

    model.eval()
    logps, hits, span_of = [], [], []
    span_base = 0
    for s in range(0, n_windows, batch_size):
        batch = collate_masked([ds[i] for i in range(s, min(n_windows, s + batch_size))])
        logits, _ = model(batch["inputs"])
        logp = torch.log_softmax(logits.float(), -1)
        y = batch["targets"]
        m = y != IGNORE
        true = y.clamp_min(0)
        lp = logp.gather(-1, true.unsqueeze(-1)).squeeze(-1)[m] / np.log(2)
        logps.append(lp.numpy())
        hits.append((logp.argmax(-1) == true)[m].numpy())
        # blank ids: a new blank starts wherever a masked position does not follow a masked one
        mm = m.numpy()
        prev = np.concatenate([np.zeros((mm.shape[0], 1), bool), mm[:, :-1]], axis=1)
        new = mm & ~prev
        ids = np.cumsum(new.ravel()).reshape(mm.shape) - 1 + span_base
        span_of.append(ids[mm])
        span_base += int(new.sum())
    return np.concatenate(logps), np.concatenate(hits), np.concatenate(span_of)


def check_fill_model(model: torch.nn.Module, mask_id: int, where: Any) -> None:
    info = model.hparams.get("data_info") or {}
    if info.get("domain") != "fill_blank" or info.get("mask_id") != mask_id:
        raise SeqpipeError(
            f"not a fill-in-the-blank model for this vocabulary (domain={info.get('domain')!r}, "
            f"mask_id={info.get('mask_id')!r}, want {mask_id})",
            where=where,
            fix="train it with a pipelines/fill_blank config",
        )


# -- the n-gram baseline ----------------------------------------------------------------------
def ngram_scores(
    lm: KneserNeyLM,
    order: int,
    stream: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    oracle: bool,
    allowed: np.ndarray | None = None,
    beam: int = 4,
) -> dict[str, float]:
    """The n-gram's scores on the blanks (``ngram_logps``)."""
    return scores_from_logp(*ngram_logps(lm, order, stream, starts, lengths, oracle, allowed, beam))


def allowed_ids(dm: Any) -> np.ndarray | None:
    """Text ids a blank may hold: letters when whole words are masked, anything for char spans."""
    if dm.mask_args["unit"] != "word":
        return None
    return np.array([t.isalpha() for t in dm.text_vocab])


def _eval_windows(cfg: dict[str, Any], ds: MaskedWindows) -> int:
    limit = (cfg.get("evaluate") or {}).get("max_windows")
    return len(ds) if not limit else min(len(ds), int(limit))


def baselines(dm: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    """KN n-grams fitted on train; order picked on the val blanks; both variants scored on test blanks."""
    ev = cfg.get("evaluate", {})
    max_order = int(ev.get("ngram_max_order", 7))
    dm.prepare_data()
    dm.setup("test")
    text_vocab = len(dm.text_vocab)
    lm = KneserNeyLM(max_order, text_vocab).fit(np.asarray(dm.split_tokens("train")))
    val_ds, test_ds = dm.datasets["val"], dm.datasets["test"]
    vs, vl, _ = blanks(val_ds, _eval_windows(cfg, val_ds))
    tokens = dm.store.arrays["tokens"]
    allowed = allowed_ids(dm)
    beam = int(ev.get("ngram_beam", 4))
    orders = range(1, max_order + 1)
    val_bpc = {o: ngram_scores(lm, o, tokens, vs, vl, False, allowed, beam)["test_bits_per_char"] for o in orders}
    val_oracle = {o: ngram_scores(lm, o, tokens, vs, vl, True, allowed)["test_bits_per_char"] for o in orders}
    best, best_oracle = min(val_bpc, key=val_bpc.get), min(val_oracle, key=val_oracle.get)
    ts, tl, _ = blanks(test_ds, _eval_windows(cfg, test_ds))
    return {
        "baselines": {f"kn{best}_left": ngram_scores(lm, best, tokens, ts, tl, False, allowed, beam)},
        "ngram_oracle_bound": {
            f"kn{best_oracle}_left_oracle": ngram_scores(lm, best_oracle, tokens, ts, tl, True, allowed)
        },
        "ngram_order_on_val": best,
        "ngram_val_bits_per_char_by_order": {str(o): v for o, v in val_bpc.items()},
        "ngram_oracle_val_bits_per_char_by_order": {str(o): v for o, v in val_oracle.items()},
    }


def evaluate(model: torch.nn.Module, dm: Any, cfg: dict[str, Any], base: dict[str, Any], out_dir: Path) -> Evaluation:
    ev = cfg.get("evaluate", {})
    check_fill_model(model, dm.mask_id, cfg.get("config_path"))
    test = dm.datasets["test"]
    n = _eval_windows(cfg, test)
    metrics = model_scores(model, test, n)
    compared: dict[str, dict[str, float]] = {}
    others: dict[str, torch.nn.Module] = {}
    missing = {}
    for name, ckpt in (ev.get("compare") or {}).items():
        if not Path(ckpt).exists():
            missing[name] = f"{ckpt} not found (train it first)"
            log.warning("fill_blank: comparison %s skipped: %s", name, missing[name])
            continue
        other = load_model(ckpt)
        check_fill_model(other, dm.mask_id, ckpt)
        compared[name] = model_scores(other, test, n)
        others[name] = other
    rows = {"model": metrics, **compared, **base["baselines"], **base.get("ngram_oracle_bound", {})}
    table = out_dir / "comparison.json"
    table.write_text(json.dumps(rows, indent=2) + "\n")
    hp = model.hparams
    return Evaluation(
        task=f"fill in the blank: {dm.mask_args['spans']} masked {dm.mask_args['unit']}(s) a {dm.seq_len}-character "
        "window of the text test split, predicted from both sides",
        primary_metric="test_bits_per_char",
        direction="lower",
        model=metrics,
        baselines={**compared, **base["baselines"]},
        extra={
            "model_description": f"{'Bi' if hp.get('bidirectional') else ''}{str(hp.get('cell', '')).upper()} "
            f"hidden {hp.get('hidden_size')}",
            "compared_models": sorted(compared),
            "compared_missing": missing,
            "ngram_oracle_bound": base.get("ngram_oracle_bound"),
            "ngram_order_on_val": base.get("ngram_order_on_val"),
            "ngram_val_bits_per_char_by_order": base.get("ngram_val_bits_per_char_by_order"),
            "test_windows": n,
            "masking": dm.mask_args,
        },
        artifacts=[table],
        margin=blank_margin(model, dm, cfg, {**compared, **base["baselines"]}, others, n),
    )


def blank_margin(
    model: torch.nn.Module, dm: Any, cfg: dict[str, Any], rows: dict, others: dict[str, torch.nn.Module], n: int
) -> dict[str, Any]:
    """Bits per masked character of model - best baseline (a compared model or the n-gram, scored again
    here), the masked characters in window order resampled in moving blocks of 8 windows' characters."""
    ev, test = cfg.get("evaluate", {}), dm.datasets["test"]
    vs = best_baseline(rows, "test_bits_per_char", "lower")
    model_lp = model_logps(model, test, n)[0]
    if vs in others:
        base_lp = model_logps(others[vs], test, n)[0]
    else:
        order = int(vs.removeprefix("kn").removesuffix("_left"))
        lm = KneserNeyLM(order, len(dm.text_vocab)).fit(np.asarray(dm.split_tokens("train")))
        ts, tl, _ = blanks(test, n)
        tokens = dm.store.arrays["tokens"]
        base_lp = ngram_logps(lm, order, tokens, ts, tl, False, allowed_ids(dm), int(ev.get("ngram_beam", 4)))[0]
    block = max(1, round(8 * len(model_lp) / max(1, n)))
    return unit_margin(
        -model_lp,
        -base_lp,
        vs,
        unit="masked character (bits), in window order",
        block=block,
        note=f"moving blocks of {block} masked characters (about 8 windows)",
    )
