"""Spoken digit strings: character error rate and whole-string accuracy on unseen voices.

    test_cer       sum of edit distances (digits) / number of reference digits, beam search
    test_seq_acc   share of utterances transcribed exactly, beam search
    *_greedy       the same with greedy decoding
Per-length string accuracy (1..7 digits) is in extra.

Baseline (``fixed_segments``, seqpipe.domains.digits.segments): a single-digit classifier on equal segments, their
count guessed from the duration, C chosen on val. Same test utterances, same metrics.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqpipe.domains.audio.features import FeatureConfig, log_mel
from seqpipe.domains.audio.source import load_audio
from seqpipe.domains.digits.datamodule import DigitUtterances, collate_utterances, decode_ids
from seqpipe.domains.digits.segments import FixedSegments
from seqpipe.errors import SeqpipeError
from seqpipe.evaluation import Evaluation
from seqpipe.evaluation.margin import best_baseline, statistic_margin
from seqpipe.evaluation.select import pick_on_val
from seqpipe.models.decoding import edit_distance

# the `evaluate:` keys this domain reads (anything else in a config is an error)
# what evaluate writes under reports/<experiment>/ (".": the whole folder), for `seqpipe dvc-yaml`
DVC_REPORTS = {"outs": ["."]}
EVALUATE_KEYS = {
    "logreg_C": "C grid of the fixed-segment digit classifier (chosen on val)",
    "beam_width": "beam search width (1 = greedy); default: the model's",
}


def string_metrics(hyps: list[str], refs: list[str], suffix: str = "") -> dict[str, float]:
    errors = sum(edit_distance(h, r) for h, r in zip(hyps, refs, strict=False))
    return {
        f"test_cer{suffix}": errors / max(1, sum(len(r) for r in refs)),
        f"test_seq_acc{suffix}": float(np.mean([h == r for h, r in zip(hyps, refs, strict=False)])),
    }


def by_length(hyps: list[str], refs: list[str]) -> dict[str, float]:
    out = {}
    for n in sorted({len(r) for r in refs}):
        sel = [h == r for h, r in zip(hyps, refs, strict=False) if len(r) == n]
        out[str(n)] = float(np.mean(sel))
    return out


@torch.no_grad()
def transcribe(model: torch.nn.Module, ds: DigitUtterances, beam_width: int, batch_size: int = 64) -> list[str]:
    model.eval()
    out = []
    for s in range(0, len(ds), batch_size):
        b = collate_utterances([ds[i] for i in range(s, min(len(ds), s + batch_size))])
        out += [decode_ids(h) for h in model.decode(b["inputs"], b["lengths"], beam_width)]
    return out


# -- baseline: fixed-length segments + a single-digit classifier --------------------------------
def _split(ds: DigitUtterances) -> tuple[list[np.ndarray], list[str]]:
    return [ds[i][0] for i in range(len(ds))], [ds.text(i) for i in range(len(ds))]


def baselines(dm: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    ev = cfg.get("evaluate", {})
    dm.prepare_data()
    dm.setup("test")
    max_digits = int(dm.meta["digits"]["max_digits"])
    (tr_x, tr_y), (va_x, va_y), (te_x, te_y) = (_split(dm.datasets[s]) for s in ("train", "val", "test"))
    best = pick_on_val(
        [float(c) for c in ev.get("logreg_C", [0.1, 1.0])],
        lambda C: FixedSegments(max_digits, C).fit(tr_x, tr_y),
        lambda C, seg: string_metrics(seg.predict(va_x), va_y)["test_cer"],
        higher_is_better=False,
    )
    seg = best.model
    hyps = seg.predict(te_x)
    count_acc = float(np.mean(seg.count(te_x) == np.array([len(r) for r in te_y])))
    return {
        "baselines": {"fixed_segments": string_metrics(hyps, te_y)},
        "fixed_segments_C_on_val": best.params,
        "fixed_segments_val_cer_by_C": {str(c): v for c, v in best.scores},
        "fixed_segments_count_acc": count_acc,
        "fixed_segments_seq_acc_by_length": by_length(hyps, te_y),
        "test_utterances": len(te_y),
        "test_hypotheses": {"fixed_segments": list(hyps)},  # per utterance, for the margin's interval
    }


def evaluate(model: torch.nn.Module, dm: Any, cfg: dict[str, Any], base: dict[str, Any], out_dir: Path) -> Evaluation:
    ev = cfg.get("evaluate", {})
    info = model.hparams.get("data_info") or {}
    if info.get("domain") != "digits":
        raise SeqpipeError(
            f"not a digit-string model (domain={info.get('domain')!r})",
            where=cfg.get("config_path"),
            fix="train it with pipelines/digits",
        )
    test = dm.datasets["test"]
    refs = [test.text(i) for i in range(len(test))]
    width = int(ev.get("beam_width") or model.hparams.beam_width)
    beam = transcribe(model, test, width)
    greedy = beam if width == 1 else transcribe(model, test, 1)
    metrics = {**string_metrics(beam, refs), **string_metrics(greedy, refs, "_greedy")}
    path = out_dir / "transcripts.csv"
    speakers = dm.meta["groups"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["speaker", "reference", "beam", "greedy"])
        for i, r in enumerate(refs):
            w.writerow([speakers[int(dm.store.index["group"][test.rows[i]])], r, beam[i], greedy[i]])
    hp = model.hparams
    return Evaluation(
        task="spoken digit strings (1-7 digits, espeak-ng voices) -> digits, test voices unseen in training",
        primary_metric="test_cer",
        direction="lower",
        model=metrics,
        baselines=base["baselines"],
        extra={
            "beam_width": width,
            "attention": hp.get("attention"),
            "encoder": f"{hp.get('encoder')} {'Bi' if hp.get('bidirectional') else ''}{str(hp.get('cell')).upper()}",
            "seq_acc_by_length": by_length(beam, refs),
            "test_utterances": len(refs),
            "test_speakers": dm.meta["digits"]["speakers_per_split"]["test"],
            **{k: v for k, v in base.items() if k.startswith("fixed_segments_")},
        },
        artifacts=[path],
        margin=utterance_margin(dm, cfg, base, beam, refs),
    )


def utterance_margin(dm: Any, cfg: dict[str, Any], base: dict[str, Any], hyps: list[str], refs: list[str]) -> dict:
    """CER of model - best baseline, utterances resampled and both CERs (errors / reference digits) recomputed."""
    vs = best_baseline(base["baselines"], "test_cer", "lower")
    bhyps = (base.get("test_hypotheses") or baselines(dm, cfg)["test_hypotheses"])[vs]  # older baselines files
    n_ref = np.array([len(r) for r in refs], dtype=np.float64)
    err_m = np.array([edit_distance(h, r) for h, r in zip(hyps, refs, strict=True)], dtype=np.float64)
    err_b = np.array([edit_distance(h, r) for h, r in zip(bhyps, refs, strict=True)], dtype=np.float64)

    def cer_margin(idx: np.ndarray) -> float:
        ref = max(1.0, n_ref[idx].sum())
        return float(err_m[idx].sum() / ref - err_b[idx].sum() / ref)

    return statistic_margin(cer_margin, len(refs), vs, unit="test utterance (CER recomputed on each resample)")


# -- predict ----------------------------------------------------------------------------------
@torch.no_grad()
def predict(model: torch.nn.Module, paths: list[str]) -> list[dict[str, Any]]:
    """WAV/FLAC/OGG files -> the digit string each one says (beam search, the model's width)."""
    info = model.hparams.get("data_info") or {}
    fc = FeatureConfig(**info["features"])
    norm = info["normalization"]
    mean, std = np.asarray(norm["mean"], np.float32), np.asarray(norm["std"], np.float32)
    model.eval()
    out = []
    for p in paths:
        wave = load_audio(p, fc.sample_rate)
        if len(wave) > fc.max_seconds * fc.sample_rate:
            raise SeqpipeError(
                f"{len(wave) / fc.sample_rate:.1f} s long; the model reads at most {fc.max_seconds} s",
                where=p,
                fix="cut the recording into shorter utterances",
            )
        x = torch.from_numpy((log_mel(wave, fc) - mean) / std)[None]
        ids = model.decode(x, torch.tensor([x.shape[1]]))[0]
        out.append({"file": str(p), "digits": decode_ids(ids), "beam_width": int(model.hparams.beam_width)})
    return out
