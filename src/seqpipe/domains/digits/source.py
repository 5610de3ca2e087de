"""Spoken digit strings ("four one seven" -> "417") synthesized offline with espeak-ng, as WAV files.

    python -m seqpipe.domains.digits.source --out data/raw/digits --per-voice 20 --seed 0

writes one folder a speaker and a manifest the digit-string datamodule reads::

    <out>/<speaker>/<speaker>_<k>.wav      16-bit PCM, mono, ``sample_rate`` Hz
    <out>/manifest.csv                     path,text,speaker   (text = the digits, e.g. 417)

Every espeak-ng voice variant is one speaker (the audio domain's generator, seqpipe.domains.audio.speech,
does the synthesis). Utterance k of a speaker has 1..7 digits, a speed, pitch, gain and
background-noise level drawn from a generator seeded by (seed, speaker, k) alone, so an utterance
never changes when voices are added or removed. The datamodule splits by speaker: test voices are
never heard in training.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seqpipe.data.generated import GeneratedFolder, add_profile, add_seed, generator_parser, run_generator
from seqpipe.domains.audio.speech import SAMPLE_RATE, english_voices, synthesize
from seqpipe.domains.audio.spoken_digits import DIGITS, clip_rng, speaker_name
from seqpipe.errors import SeqpipeError
from seqpipe.progress import progress


def spoken(text: str) -> str:
    """'417' -> 'four one seven' (what the voice says)."""
    if not text or not text.isdigit():
        raise SeqpipeError(f"digit string {text!r} holds characters other than 0-9", where="text")
    return " ".join(DIGITS[int(c)] for c in text)


def generate_digit_strings(
    out_dir: str | Path,
    *,
    voices: Sequence[str] | None = None,
    per_voice: int = 20,
    min_digits: int = 1,
    max_digits: int = 7,
    seed: int = 0,
    speed: tuple[int, int] = (130, 210),
    pitch: tuple[int, int] = (20, 80),
    snr_db: tuple[float, float] | None = (15.0, 40.0),
    gain_db: tuple[float, float] = (-9.0, 0.0),
    sample_rate: int = 16000,
) -> dict:
    """Synthesize ``per_voice`` digit strings for each voice into ``out_dir`` (replaced atomically)."""
    import soundfile as sf
    import soxr

    voices = list(voices or english_voices())
    if per_voice < 1 or not voices or not 1 <= min_digits <= max_digits:
        raise SeqpipeError(
            f"need voices, per_voice >= 1 and 1 <= min_digits <= max_digits "
            f"(got {len(voices)}, {per_voice}, {min_digits}, {max_digits})",
            where="generate_digit_strings",
        )
    names = [speaker_name(v) for v in voices]
    if len(set(names)) != len(names):
        raise SeqpipeError("two voices map to the same speaker name", where=str(voices))
    t0 = time.time()
    rows, total = [], 0
    args = dict(
        voices=voices,
        per_voice=per_voice,
        min_digits=min_digits,
        max_digits=max_digits,
        seed=seed,
        speed=speed,
        pitch=pitch,
        snr_db=snr_db,
        gain_db=gain_db,
        sample_rate=sample_rate,
    )
    with GeneratedFolder(out_dir, "seqpipe.domains.digits.source", args=args) as folder:
        tmp = folder.path
        for voice, spk in progress(
            zip(voices, names, strict=False), "synthesizing digit strings", total=len(voices), unit="voice"
        ):
            (tmp / spk).mkdir()
            for k in range(per_voice):
                rng = clip_rng(seed, "strings", spk, k)
                n = int(rng.integers(min_digits, max_digits + 1))
                text = "".join(str(d) for d in rng.integers(0, 10, size=n))
                wave = synthesize(
                    spoken(text),
                    voice,
                    speed=int(rng.integers(speed[0], speed[1] + 1)),
                    pitch=int(rng.integers(pitch[0], pitch[1] + 1)),
                    snr_db=float(rng.uniform(*snr_db)) if snr_db else None,
                    gain_db=float(rng.uniform(*gain_db)),
                    seed=int(rng.integers(2**31)),
                )
                if sample_rate != SAMPLE_RATE:
                    wave = soxr.resample(wave, SAMPLE_RATE, sample_rate, quality="HQ")
                rel = f"{spk}/{spk}_{k}.wav"
                sf.write(tmp / rel, np.clip(wave, -1, 1), sample_rate, subtype="PCM_16")
                rows.append((rel, text, spk))
                total += len(wave)
        with open(tmp / "manifest.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "text", "speaker"])
            w.writerows(rows)
    return {
        "utterances": len(rows),
        "speakers": len(voices),
        "seconds": round(time.time() - t0, 1),
        "audio_minutes": round(total / sample_rate / 60, 1),
        "out": str(folder.out),
    }


def main(argv: list[str] | None = None) -> int:
    p = generator_parser(__doc__.splitlines()[0], "data/raw/digits", "python -m seqpipe.domains.digits.source")
    p.add_argument("--per-voice", type=int, default=20)
    p.add_argument("--voices", type=int, default=0, help="use only the first N voice variants (0 = all)")
    p.add_argument("--min-digits", type=int, default=1)
    p.add_argument("--max-digits", type=int, default=7)
    add_seed(p)
    p.add_argument("--sample-rate", type=int, default=16000)
    add_profile(p, "'fast' (CI): 2 utterances a voice")
    a = p.parse_args(argv)
    if a.profile == "fast":
        a.per_voice = min(a.per_voice, 2)
    voices = list(english_voices())[: a.voices or None]
    print(
        generate_digit_strings(
            a.out,
            voices=voices,
            per_voice=a.per_voice,
            min_digits=a.min_digits,
            max_digits=a.max_digits,
            seed=a.seed,
            sample_rate=a.sample_rate,
        )
    )
    return 0


if __name__ == "__main__":
    run_generator(main)
