"""The embedded default audio dataset: English digit words spoken by espeak-ng, written as WAV files.

    python -m seqpipe.domains.audio.spoken_digits --out data/raw/audio/digits --renditions 2 --seed 0

writes the Speech Commands layout, so the same reader serves it and a real dataset::

    <out>/<label>/<speaker>_nohash_<k>.wav      16-bit PCM, mono, ``sample_rate`` Hz
    <out>/manifest.csv                          path,label,speaker (the same clips, as a manifest)

``speak_clip`` (one utterance with a random delivery) and ``write_clips`` (a list of utterances ->
a WAV folder + manifest, atomically, in parallel) are the reusable pieces (spoken digit strings use
them too).

Every voice variant espeak-ng ships is one speaker; each (speaker, digit) is spoken ``renditions``
times with a speed, pitch, gain and background-noise level drawn from a generator seeded by
(seed, speaker, digit, k) alone, so a clip never changes when other voices are added or removed.
Speakers are what the datamodule splits on: test voices are never heard in training.
"""

from __future__ import annotations

import csv
import hashlib
import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from seqpipe.data.generated import GeneratedFolder, add_profile, add_seed, generator_parser, run_generator
from seqpipe.domains.audio.speech import SAMPLE_RATE, english_voices, synthesize
from seqpipe.errors import SeqpipeError
from seqpipe.progress import progress

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def speaker_name(voice: str) -> str:
    """'en+f3' -> 'f3' (file-name safe; '_' is reserved for the '_nohash_' separator)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", voice.split("+", 1)[-1])


def clip_rng(seed: int, *parts: object) -> np.random.Generator:
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


@dataclass(frozen=True)
class Variation:
    """Ranges a clip's delivery is drawn from: speed (words/minute), pitch (0..99), white-noise SNR in dB
    (None: clean), overall gain in dB (so loudness is not a cue) and pitch range, i.e. intonation (0..99;
    None: espeak-ng's 50 for every clip, and no draw, so older datasets regenerate bit for bit)."""

    speed: tuple[int, int] = (120, 220)
    pitch: tuple[int, int] = (20, 80)
    snr_db: tuple[float, float] | None = (0.0, 20.0)
    gain_db: tuple[float, float] = (-9.0, 0.0)
    pitch_range: tuple[int, int] | None = None


def speak_clip(
    text: str, voice: str, rng: np.random.Generator, variation: Variation = Variation(), sample_rate: int = 16000
) -> np.ndarray:
    """One utterance, its speed/pitch/noise/gain drawn from ``rng`` (equal rng state -> equal clip), float32 at
    ``sample_rate`` (espeak-ng speaks at 22,050 Hz; resampled with soxr)."""
    import soxr

    v = variation
    speed = int(rng.integers(v.speed[0], v.speed[1] + 1))
    pitch = int(rng.integers(v.pitch[0], v.pitch[1] + 1))
    snr_db = float(rng.uniform(*v.snr_db)) if v.snr_db else None
    gain_db = float(rng.uniform(*v.gain_db))
    seed = int(rng.integers(2**31))
    pitch_range = int(rng.integers(v.pitch_range[0], v.pitch_range[1] + 1)) if v.pitch_range else 50  # drawn last
    wave = synthesize(
        text, voice, speed=speed, pitch=pitch, pitch_range=pitch_range, snr_db=snr_db, gain_db=gain_db, seed=seed
    )
    if sample_rate != SAMPLE_RATE:
        wave = soxr.resample(wave, SAMPLE_RATE, sample_rate, quality="HQ").astype(np.float32)
    return wave


@dataclass(frozen=True)
class ClipJob:
    """One clip to write: ``text`` spoken by ``voice`` to ``rel_path``; ``key`` seeds its variation draw
    (with the dataset seed); ``row`` is its manifest row."""

    rel_path: str
    text: str
    voice: str
    key: tuple
    row: tuple


def write_clips(
    out_dir: str | Path,
    jobs: Sequence[ClipJob],
    header: Sequence[str],
    *,
    seed: int = 0,
    variation: Variation = Variation(),
    sample_rate: int = 16000,
    workers: int = 2,
) -> dict:
    """Speak every job into ``out_dir/<rel_path>`` (16-bit PCM WAV) plus ``out_dir/manifest.csv``
    (``header`` + each job's row); the folder is replaced atomically. Clips are independent of each
    other and of ``workers``. Returns clips written, seconds taken and audio hours."""
    import soundfile as sf

    t0 = time.time()
    args = dict(header=list(header), jobs=len(jobs), seed=seed, variation=asdict(variation), sample_rate=sample_rate)
    with GeneratedFolder(out_dir, "seqpipe.domains.audio.spoken_digits", args=args) as folder:
        tmp = folder.path

        def make(job: ClipJob) -> int:
            wave = speak_clip(job.text, job.voice, clip_rng(seed, *job.key), variation, sample_rate)
            (tmp / job.rel_path).parent.mkdir(parents=True, exist_ok=True)
            sf.write(tmp / job.rel_path, np.clip(wave, -1, 1), sample_rate, subtype="PCM_16")
            return len(wave)

        with ThreadPoolExecutor(max(1, workers)) as pool:
            total_samples = sum(progress(pool.map(make, jobs), "synthesizing clips", total=len(jobs), unit="clip"))
        with open(tmp / "manifest.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(job.row for job in jobs)
    return {
        "clips": len(jobs),
        "seconds": round(time.time() - t0, 1),
        "audio_hours": round(total_samples / sample_rate / 3600, 3),
        "out": str(folder.out),
    }


def generate_spoken_digits(
    out_dir: str | Path,
    *,
    voices: Sequence[str] | None = None,
    words: Sequence[str] = DIGITS,
    renditions: int = 2,
    seed: int = 0,
    variation: Variation = Variation(),
    sample_rate: int = 16000,
    workers: int = 2,
) -> dict:
    """Synthesize ``words`` x ``voices`` x ``renditions`` clips into ``out_dir`` (replaced atomically).

    Args:
        voices: espeak-ng voices (default: every variant, as English: english_voices()).
        words: the labels, spoken as written (label folder = word).
        renditions: clips per (voice, word), each with its own speed/pitch/gain/noise draw.
        variation: the ranges of speed, pitch, noise SNR and gain those draws come from.
        sample_rate: WAV sample rate.
        workers: clips synthesized in parallel (each clip is independent of the others and of the order).
    Returns a summary: clips written, speakers, seconds, audio duration.
    """
    voices = list(voices or english_voices())
    if renditions < 1 or not voices or not words:
        raise SeqpipeError("need at least one voice, one word and one rendition", where="generate_spoken_digits")
    names = [speaker_name(v) for v in voices]
    if len(set(names)) != len(names):
        raise SeqpipeError("two voices map to the same speaker name", where=str(voices))
    jobs = [
        ClipJob(
            f"{word}/{spk}_nohash_{k}.wav", word, voice, (spk, word, k), (f"{word}/{spk}_nohash_{k}.wav", word, spk)
        )
        for voice, spk in zip(voices, names, strict=False)
        for word in words
        for k in range(renditions)
    ]
    summary = write_clips(
        out_dir,
        jobs,
        ["path", "label", "speaker"],
        seed=seed,
        variation=variation,
        sample_rate=sample_rate,
        workers=workers,
    )
    return {**summary, "speakers": len(voices), "words": len(words)}


def main(argv: list[str] | None = None) -> int:
    p = generator_parser(
        __doc__.splitlines()[0], "data/raw/audio/digits", "python -m seqpipe.domains.audio.spoken_digits"
    )
    p.add_argument("--renditions", type=int, default=2)
    add_seed(p)
    p.add_argument("--voices", type=int, default=0, help="use only the first N voice variants (0 = all)")
    p.add_argument("--snr-db", default="0,20", help="'lo,hi' noise SNR range in dB, or 'none'")
    p.add_argument("--accents", action="store_true", help="spread the voices over espeak-ng's 8 English accents")
    p.add_argument(
        "--pitch-range", default="none", help="'lo,hi' intonation (pitch range 0..99) drawn a clip, or 'none'"
    )
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--workers", type=int, default=2, help="clips synthesized in parallel")
    add_profile(p, "fast: 12 voices spread over the list, one rendition each (CI)", choices=["default", "fast"])
    a = p.parse_args(argv)
    voices = list(english_voices(accents=a.accents))[: a.voices or None]
    if a.profile == "fast":
        voices, a.renditions = voices[:: max(1, len(voices) // 12)][:12], 1
    snr = None if a.snr_db.lower() == "none" else tuple(float(x) for x in a.snr_db.split(","))
    pitch_range = None if a.pitch_range.lower() == "none" else tuple(int(x) for x in a.pitch_range.split(","))
    print(
        generate_spoken_digits(
            a.out,
            voices=voices,
            renditions=a.renditions,
            seed=a.seed,
            variation=Variation(snr_db=snr, pitch_range=pitch_range),
            sample_rate=a.sample_rate,
            workers=a.workers,
        )
    )
    return 0


if __name__ == "__main__":
    run_generator(main)
