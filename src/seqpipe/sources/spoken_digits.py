"""The embedded default audio dataset: English digit words spoken by espeak-ng, written as WAV files.

    python -m seqpipe.sources.spoken_digits --out data/raw/audio/digits --renditions 2 --seed 0

writes the Speech Commands layout, so the same reader serves it and a real dataset::

    <out>/<label>/<speaker>_nohash_<k>.wav      16-bit PCM, mono, ``sample_rate`` Hz
    <out>/manifest.csv                          path,label,speaker (the same clips, as a manifest)

Every voice variant espeak-ng ships is one speaker; each (speaker, digit) is spoken ``renditions``
times with a speed, pitch, gain and background-noise level drawn from a generator seeded by
(seed, speaker, digit, k) alone, so a clip never changes when other voices are added or removed.
Speakers are what the datamodule splits on: test voices are never heard in training.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import re
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from seqpipe.errors import SeqpipeError
from seqpipe.sources.speech import SAMPLE_RATE, english_voices, synthesize

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def speaker_name(voice: str) -> str:
    """'en+f3' -> 'f3' (file-name safe; '_' is reserved for the '_nohash_' separator)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", voice.split("+", 1)[-1])


def clip_rng(seed: int, *parts: object) -> np.random.Generator:
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def generate_spoken_digits(
    out_dir: str | Path,
    *,
    voices: Sequence[str] | None = None,
    words: Sequence[str] = DIGITS,
    renditions: int = 2,
    seed: int = 0,
    speed: tuple[int, int] = (120, 220),
    pitch: tuple[int, int] = (20, 80),
    snr_db: tuple[float, float] | None = (0.0, 20.0),
    gain_db: tuple[float, float] = (-9.0, 0.0),
    sample_rate: int = 16000,
    workers: int = 2,
) -> dict:
    """Synthesize ``words`` x ``voices`` x ``renditions`` clips into ``out_dir`` (replaced atomically).

    Args:
        voices: espeak-ng voices (default: every variant, as English: english_voices()).
        words: the labels, spoken as written (label folder = word).
        renditions: clips per (voice, word), each with its own speed/pitch/gain/noise draw.
        speed, pitch: inclusive ranges for words per minute and base pitch (0..99).
        snr_db: range of white-noise SNR in dB, or None for clean speech.
        gain_db: range of overall level, so loudness is not a cue.
        sample_rate: WAV sample rate (espeak-ng speaks at 22,050 Hz; resampled with soxr).
        workers: clips synthesized in parallel (each clip is independent of the others and of the order).
    Returns a summary: clips written, speakers, seconds, audio duration.
    """
    import soundfile as sf
    import soxr

    voices = list(voices or english_voices())
    if renditions < 1 or not voices or not words:
        raise SeqpipeError("need at least one voice, one word and one rendition", where="generate_spoken_digits")
    names = [speaker_name(v) for v in voices]
    if len(set(names)) != len(names):
        raise SeqpipeError("two voices map to the same speaker name", where=str(voices))
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    t0 = time.time()
    rows, total_samples = [], 0
    try:
        for word in words:
            (tmp / word).mkdir()

        def make(job: tuple[str, str, str, int]) -> tuple[str, str, str, int]:
            voice, spk, word, k = job
            rng = clip_rng(seed, spk, word, k)
            wave = synthesize(
                word, voice,
                speed=int(rng.integers(speed[0], speed[1] + 1)),
                pitch=int(rng.integers(pitch[0], pitch[1] + 1)),
                snr_db=float(rng.uniform(*snr_db)) if snr_db else None,
                gain_db=float(rng.uniform(*gain_db)),
                seed=int(rng.integers(2**31)),
            )
            if sample_rate != SAMPLE_RATE:
                wave = soxr.resample(wave, SAMPLE_RATE, sample_rate, quality="HQ")
            rel = f"{word}/{spk}_nohash_{k}.wav"
            sf.write(tmp / rel, np.clip(wave, -1, 1), sample_rate, subtype="PCM_16")
            return rel, word, spk, len(wave)

        jobs = [(v, spk, word, k) for v, spk in zip(voices, names) for word in words for k in range(renditions)]
        with ThreadPoolExecutor(max(1, workers)) as pool:
            for rel, word, spk, n in pool.map(make, jobs):
                rows.append((rel, word, spk))
                total_samples += n
        with open(tmp / "manifest.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "label", "speaker"])
            w.writerows(rows)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"clips": len(rows), "speakers": len(voices), "words": len(words), "seconds": round(time.time() - t0, 1),
            "audio_hours": round(total_samples / sample_rate / 3600, 3), "out": str(out_dir)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m seqpipe.sources.spoken_digits", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="data/raw/audio/digits")
    p.add_argument("--renditions", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--voices", type=int, default=0, help="use only the first N voice variants (0 = all)")
    p.add_argument("--snr-db", default="0,20", help="'lo,hi' noise SNR range in dB, or 'none'")
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--workers", type=int, default=2, help="clips synthesized in parallel")
    p.add_argument("--profile", default="default", choices=["default", "fast"],
                   help="fast: 12 voices spread over the list, one rendition each (CI)")
    a = p.parse_args(argv)
    voices = list(english_voices())[: a.voices or None]
    if a.profile == "fast":
        voices, a.renditions = voices[:: max(1, len(voices) // 12)][:12], 1
    snr = None if a.snr_db.lower() == "none" else tuple(float(x) for x in a.snr_db.split(","))
    print(generate_spoken_digits(a.out, voices=voices, renditions=a.renditions, seed=a.seed, snr_db=snr,
                                 sample_rate=a.sample_rate, workers=a.workers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
