"""Offline speech synthesis: text -> waveform with espeak-ng, deterministic from its arguments.

pip alone suffices: the ``espeakng-loader`` package bundles libespeak-ng 1.52 and its data, which
seqpipe.domains.audio.espeak drives through ctypes (the C API in synchronous mode: samples come back through a
callback, nothing is played). When the package is missing but Debian's ``espeak-ng`` command is on
PATH, the command is used instead (same engine, same voices).

    from seqpipe.domains.audio.speech import synthesize, english_voices
    wave = synthesize("four one seven", voice="en+f3", speed=150, pitch=60, seed=0)   # float32, 22050 Hz

Calls from several threads run in parallel (one helper process each), e.g. with a
concurrent.futures.ThreadPoolExecutor; results do not depend on the order or the thread.

``synthesize`` is the one entry point that other tasks reuse (spoken digits, spoken digit strings).
Many voice variants add random breath and flutter; ``seed`` reseeds espeak-ng's generator
(espeak_ng_SetRandSeed) before every utterance and drives the background noise at ``snr_db``, so
equal arguments give equal samples, in any order and in any process (the espeak-ng command-line
fallback cannot be seeded: there only the added noise is deterministic).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from seqpipe.domains.audio.espeak import MAX_SPEED, MIN_SPEED, SAMPLE_RATE
from seqpipe.domains.audio.espeak import engine as _engine
from seqpipe.domains.audio.espeak import speak_cli as _speak_cli
from seqpipe.errors import SeqpipeError

__all__ = ["ENGLISH_ACCENTS", "SAMPLE_RATE", "add_noise", "check_voice", "english_voices", "synthesize", "variants_dir"]


def variants_dir() -> Path | None:
    try:
        import espeakng_loader
    except ImportError:
        return None
    return Path(espeakng_loader.get_data_path()) / "voices" / "!v"


# espeak-ng's English accents (its gmw/en* language files): British, American, RP, Scottish, Caribbean,
# New York, Lancastrian, West Midlands. Each gives the same words other vowels, stress and rhythm.
ENGLISH_ACCENTS = (
    "en",
    "en-us",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-029",
    "en-us-nyc",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)


@lru_cache(maxsize=2)
def english_voices(accents: bool = False) -> tuple[str, ...]:
    """Every voice variant the engine ships, as English voices: ('en+Alex', ..., 'en+zac'), sorted.

    ``accents=True`` spreads the variants over ENGLISH_ACCENTS in turn ('en+Alex', 'en-us+Andrea', ...): as
    many speakers, each with its own accent as well as its own voice.
    """
    d = variants_dir()
    if d is not None and d.is_dir():
        names = sorted(p.name for p in d.iterdir() if p.is_file() and " " not in p.name)
    else:  # the CLI's built-in variants
        names = [f"f{i}" for i in range(1, 6)] + [f"m{i}" for i in range(1, 9)] + ["croak", "klatt", "whisper"]
    langs = ENGLISH_ACCENTS if accents else ("en",)
    return tuple(f"{langs[i % len(langs)]}+{n}" for i, n in enumerate(names))


def check_voice(voice: str) -> None:
    """espeak-ng silently falls back to its default for an unknown variant: refuse it instead."""
    d = variants_dir()
    lang, _, variant = voice.partition("+")
    if not lang or (variant and d is not None and not (d / variant).is_file()):
        raise SeqpipeError(
            f"unknown espeak-ng voice '{voice}'",
            where="voice",
            fix="use a language+variant name such as en+f3 (see english_voices())",
        )


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White noise at ``snr_db`` relative to the power of the non-silent part of ``wave``."""
    loud = np.abs(wave) > 0.02 * (np.abs(wave).max() + 1e-12)
    power = float(np.mean(wave[loud] ** 2)) if loud.any() else 0.0
    noise = rng.standard_normal(len(wave)).astype(np.float32)
    return wave + noise * np.float32(np.sqrt(power / (10 ** (snr_db / 10))))


def synthesize(
    text: str,
    voice: str = "en+f3",
    speed: int = 150,
    pitch: int = 50,
    *,
    pitch_range: int = 50,
    snr_db: float | None = None,
    gain_db: float = 0.0,
    seed: int = 0,
    trim: bool = True,
) -> np.ndarray:
    """Speak ``text`` -> float32 mono samples in [-1, 1] at SAMPLE_RATE (22,050 Hz).

    Args:
        text: what to say ("seven", "four one seven").
        voice: espeak-ng voice, language+variant ("en+f3", "en+m1", "en+whisper"; see english_voices()).
        speed: words per minute (80..450; espeak-ng's default is 175).
        pitch, pitch_range: base pitch and its range, 0..99.
        snr_db: add white background noise at this signal-to-noise ratio (None: clean).
        gain_db: scale the result by this many dB (clipped to [-1, 1]).
        seed: seeds the engine's own randomness (breathy variants) and the noise; equal arguments
            always give equal samples.
        trim: cut leading/trailing silence to 30 ms margins.
    """
    if not text.strip():
        raise SeqpipeError("nothing to say (empty text)", where="text")
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise SeqpipeError(f"speed {speed} outside {MIN_SPEED}..{MAX_SPEED} words per minute", where="speed")
    if not (0 <= pitch <= 99 and 0 <= pitch_range <= 99):
        raise SeqpipeError(f"pitch {pitch} / pitch_range {pitch_range} outside 0..99", where="pitch")
    check_voice(voice)
    eng = _engine()
    raw = (
        eng.speak(text, voice, speed, pitch, pitch_range, seed)
        if eng
        else _speak_cli(text, voice, speed, pitch, pitch_range)
    )
    wave = raw.astype(np.float32) / 32768.0
    if trim and len(wave):
        loud = np.flatnonzero(np.abs(wave) > 0.01)
        if len(loud):
            margin = int(0.03 * SAMPLE_RATE)
            wave = wave[max(0, loud[0] - margin) : loud[-1] + margin]
    if not len(wave) or not np.any(wave):
        raise SeqpipeError(f"espeak-ng produced no sound for {text!r}", where=voice, fix="try another voice")
    rng = np.random.default_rng(seed)
    if snr_db is not None:
        wave = add_noise(wave, snr_db, rng)
    if gain_db:
        wave = wave * np.float32(10 ** (gain_db / 20))
    return np.clip(wave, -1.0, 1.0).astype(np.float32)
