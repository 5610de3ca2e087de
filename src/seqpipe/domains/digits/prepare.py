"""Spoken digit-string preprocessing: a manifest of WAVs and their digits -> log-mel frames and token targets.

Reading, targets, speaker splits and normalization are described in seqpipe.domains.digits.datamodule's
docstring; the settings are ``DigitsSettings`` (seqpipe.domains.digits.settings). Audio decoding, log-mel
features, the speaker split and the train-only normalization are the audio domain's, so a clip is
featurized exactly as a single-digit clip is.
"""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from seqpipe.data.spec import DataSpec
from seqpipe.data.store import SPLIT_CODE, PreparedStore, StoreWriter, fingerprint
from seqpipe.domains.audio.features import FeatureConfig, log_mel
from seqpipe.domains.audio.prepare import split_groups, train_normalization
from seqpipe.domains.audio.source import SkipLog, crop, load_audio
from seqpipe.domains.digits.settings import DigitsSettings
from seqpipe.errors import SeqpipeError

logger = logging.getLogger(__name__)

ALPHABET = "0123456789"
OFFSET = 3  # digit d has output id d + OFFSET (after PAD, BOS, EOS)
NUM_IDS = OFFSET + len(ALPHABET)


def encode_digits(text: str) -> list[int]:
    return [OFFSET + ALPHABET.index(c) for c in text]


def decode_ids(ids: list[int]) -> str:
    return "".join(ALPHABET[i - OFFSET] for i in ids if OFFSET <= i < NUM_IDS)


def read_manifest(source: str | Path, log: SkipLog, max_digits: int) -> list[tuple[Path, str, str]]:
    """(file, digits, speaker) for every good row of the manifest."""
    path = Path(source)
    if path.is_dir():
        path = path / "manifest.csv"
    if not path.is_file():
        raise SeqpipeError(
            "digit-string manifest not found",
            where=path,
            fix="pass a manifest.csv (path,text,speaker) or the folder holding one "
            "(python -m seqpipe.domains.digits.source writes both)",
        )
    rows = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        cols = set(reader.fieldnames or [])
        if not {"path", "text", "speaker"} <= cols:
            raise SeqpipeError(
                f"manifest columns are {sorted(cols)}, need path,text,speaker",
                where=path,
                fix="add a header row: path,text,speaker",
            )
        for i, row in enumerate(reader, start=2):
            p = Path(row["path"] or "")
            p = p if p.is_absolute() else path.parent / p
            text = (row["text"] or "").strip()
            where = f"{path}:{i} ({row['path']})"
            if not text or not text.isdigit() or not text.isascii():
                log.bad(where, f"text {text!r} is not a string of digits 0-9", "write the spoken digits, e.g. 417")
            elif len(text) > max_digits:
                log.bad(
                    where,
                    f"text {text!r} has {len(text)} digits, more than max_digits={max_digits}",
                    "raise data.max_digits or drop the row",
                )
            elif not (row.get("speaker") or "").strip():
                log.bad(where, "row has no speaker (splits are by speaker)", "fill the speaker column")
            elif not p.is_file():
                log.bad(where, "file in manifest does not exist", "fix the path or remove the row")
            else:
                rows.append((p, text, row["speaker"].strip()))
    return rows


def prepare_digits(
    source: str | Path, out_dir: str | Path, settings: DigitsSettings | None = None, **changes: Any
) -> PreparedStore:
    """Read, validate, featurize and split a digit-string manifest into a prepared store.

    ``settings`` (default ``DigitsSettings()``) with ``changes`` (any of its fields by name) say how.
    """
    s = replace(settings or DigitsSettings(), **changes)
    t0 = time.time()
    log = SkipLog(s.strict)
    feats, kept = _featurize(read_manifest(source, log, s.max_digits), s.features, log)
    if len(kept) < 3:
        raise SeqpipeError(f"only {len(kept)} usable utterances", where=source, fix="generate or list more")
    groups = [spk for _, _, spk in kept]
    split_of = split_groups(groups, s.val_fraction, s.test_fraction, s.seed)
    split = np.array([split_of[g] for g in groups], dtype=np.int8)
    normalization = train_normalization(feats, split)
    speakers = sorted(set(groups))
    fp = fingerprint([p for p, _, _ in kept], extra=s.fingerprint_extra(texts=[t for _, t, _ in kept], speakers=groups))
    with StoreWriter(out_dir, domain="digits") as w:
        _write(w, feats, kept, split, [speakers.index(g) for g in groups])
        spec = DataSpec(
            input="features",
            target="sequence",
            feature_dim=s.features.n_mels,
            num_classes=NUM_IDS,
            max_len=max(len(f) for f in feats),
        )
        digits = {
            "alphabet": ALPHABET,
            "id_offset": OFFSET,
            "max_digits": s.max_digits,
            "features": s.features.to_dict(),
            "normalization": normalization,
            **_per_split(kept, split),
            "skipped": log.items,
        }
        w.commit(
            {
                "name": Path(out_dir).name,
                "source": str(source),
                "fingerprint": fp,
                "spec": spec.to_dict(),
                "settings": s.recorded(source),
                "files": [str(p) for p, _, _ in kept],
                "groups": speakers,
                "digits": digits,
            }
        )
    logger.info(
        "digits: %d utterances (%s), %d speakers, %d skipped, %.1fs",
        len(kept),
        digits["utterances_per_split"],
        len(speakers),
        len(log.items),
        time.time() - t0,
    )
    return PreparedStore.open(out_dir)


def _featurize(
    listed: list[tuple[Path, str, str]], fc: FeatureConfig, log: SkipLog
) -> tuple[list[np.ndarray], list[tuple[Path, str, str]]]:
    """float16 log-mel frames of every listed utterance that decodes and fits ``max_seconds`` (else bad input)."""
    max_samples = int(fc.max_seconds * fc.sample_rate)
    feats, kept = [], []
    for p, text, spk in listed:
        try:
            wave = load_audio(p, fc.sample_rate)
        except SeqpipeError as e:
            log.bad(p, e.problem, e.fix or "remove the row")
            continue
        if len(wave) > max_samples:  # a cut utterance would no longer say its digits
            log.bad(
                p,
                f"{len(wave) / fc.sample_rate:.1f} s long, over max_seconds={fc.max_seconds}",
                "raise data.max_seconds or drop the row",
            )
            continue
        feats.append(log_mel(crop(wave, max_samples), fc).astype(np.float16))
        kept.append((p, text, spk))
    return feats, kept


def _write(
    w: StoreWriter, feats: list[np.ndarray], kept: list[tuple[Path, str, str]], split: np.ndarray, group: list[int]
) -> None:
    """Append features and target digits; one index row an utterance."""
    offsets = [w.append("features", f) for f in feats]
    t_off = [w.append("targets", np.array(encode_digits(t), dtype=np.int8)) for _, t, _ in kept]
    w.set_index(
        offset=offsets,
        length=[len(f) for f in feats],
        split=split,
        target_offset=np.array(t_off, np.int64),
        target_length=np.array([len(t) for _, t, _ in kept], np.int64),
        group=np.array(group, np.int64),
    )


def _per_split(kept: list[tuple[Path, str, str]], split: np.ndarray) -> dict[str, Any]:
    """Utterances, speakers and digits of each split (meta.json["digits"])."""
    return {
        "utterances_per_split": {name: int((split == code).sum()) for name, code in SPLIT_CODE.items()},
        "speakers_per_split": {
            name: sorted({spk for (_, _, spk), s in zip(kept, split, strict=True) if s == code})
            for name, code in SPLIT_CODE.items()
        },
        "digits_per_split": {
            name: int(sum(len(t) for (_, t, _), s in zip(kept, split, strict=True) if s == code))
            for name, code in SPLIT_CODE.items()
        },
    }


def digits_settings(source: str | Path, **settings: Any) -> dict[str, Any]:
    """The preprocessing settings a digits store records in meta.json["settings"] (``DigitsSettings`` fields)."""
    return DigitsSettings(**settings).recorded(source)
