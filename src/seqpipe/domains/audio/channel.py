"""Waveform effects that make clean clips sound like real recordings, all seeded (numpy + soxr only).

Two uses, two seed streams, one family of effects:

* ``apply_channel`` -- the fixed "real channel" of the channel-shifted test: every clip goes through
  telephone band, room reverberation, coloured background noise and a mu-law 8-bit codec, with the
  per-clip parameters (RT60, SNR, noise colour) drawn from ``(seed, CHANNEL_STREAM, clip)``.
* ``augment_wave`` -- train-time augmentation: a random subset of gain, speed/pitch, telephone band,
  reverb, noise at a random SNR and mu-law, drawn from ``(seed, AUGMENT_STREAM, clip, copy)``.

The streams differ, so no training copy shares its random draws with the test channel; the effects are
the same family, so the channel-shifted test measures robustness to effects of the kind trained on,
not to an unseen kind of distortion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

CHANNEL_STREAM = 0x43484E  # "CHN": seeds of the channel-shifted test (val and test clips)
AUGMENT_STREAM = 0x415547  # "AUG": seeds of the train-time augmented copies
MU = 255  # mu-law with 8-bit codes


@dataclass(frozen=True)
class ChannelConfig:
    """The channel-shifted test's settings (recorded in meta.json)."""

    phone_rate: int = 8000  # resample to this rate and back: nothing above phone_rate / 2 survives
    band_low_hz: float = 300.0  # telephone high-pass edge
    rt60: tuple[float, float] = (0.3, 0.6)  # seconds, uniform per clip
    snr_db: tuple[float, float] = (5.0, 15.0)  # uniform per clip
    noise_colors: tuple[str, ...] = ("pink", "brown")  # one per clip, uniformly
    mulaw: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def channel_rng(seed: int, clip: int) -> np.random.Generator:
    """The channel-shifted test's generator for one clip (a stream of its own)."""
    return np.random.default_rng([int(seed), CHANNEL_STREAM, int(clip)])


def augment_rng(seed: int, clip: int, copy: int) -> np.random.Generator:
    """The generator of augmented copy ``copy`` of training clip ``clip`` (never the channel's stream)."""
    return np.random.default_rng([int(seed), AUGMENT_STREAM, int(clip), int(copy)])


def _fit_length(wave: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad to ``n`` samples: effects keep a clip's length, so its frame count is unchanged."""
    return wave[:n] if len(wave) >= n else np.pad(wave, (0, n - len(wave)))


def gain(wave: np.ndarray, db: float) -> np.ndarray:
    """Scale by ``db`` decibels."""
    return (wave * 10.0 ** (db / 20.0)).astype(np.float32)


def speed(wave: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Play ``factor`` times faster (tempo and pitch together, like a tape): the length changes by 1/factor."""
    import soxr

    return soxr.resample(wave.astype(np.float32), sample_rate * factor, sample_rate, quality="HQ").astype(np.float32)


def telephone(wave: np.ndarray, sample_rate: int, phone_rate: int = 8000, low_hz: float = 300.0) -> np.ndarray:
    """Telephone band: resample to ``phone_rate`` and back (removes everything above phone_rate / 2), then
    remove what lies below ``low_hz`` (an FFT high-pass: the handset's small speaker and the line)."""
    import soxr

    if phone_rate < sample_rate:
        narrow = soxr.resample(wave.astype(np.float32), sample_rate, phone_rate, quality="HQ")
        wave = _fit_length(soxr.resample(narrow, phone_rate, sample_rate, quality="HQ"), len(wave))
    spec = np.fft.rfft(wave.astype(np.float64))
    freqs = np.fft.rfftfreq(len(wave), 1.0 / sample_rate)
    spec[freqs < low_hz] = 0.0
    return np.fft.irfft(spec, n=len(wave)).astype(np.float32)


def impulse_response(rt60: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room: a direct path, then Gaussian noise whose amplitude decays by 60 dB in ``rt60`` s."""
    n = max(2, int(rt60 * sample_rate))
    t = np.arange(n) / sample_rate
    ir = rng.standard_normal(n) * np.exp(-3.0 * np.log(10.0) * t / rt60)  # 10^(-3 t / rt60): -60 dB at rt60
    ir[0] = 0.0
    ir *= 0.5 / max(np.sqrt(np.sum(ir**2)), 1e-12)  # reverberant energy a quarter of the direct path's
    ir[0] = 1.0
    return ir


def reverb(wave: np.ndarray, rt60: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Convolve with ``impulse_response`` (FFT); the tail past the clip's end is cut, the level kept."""
    ir = impulse_response(rt60, sample_rate, rng)
    n = len(wave) + len(ir) - 1
    size = 1 << (n - 1).bit_length()
    out = np.fft.irfft(np.fft.rfft(wave.astype(np.float64), size) * np.fft.rfft(ir, size), size)[: len(wave)]
    rms_in, rms_out = np.sqrt(np.mean(wave.astype(np.float64) ** 2)), np.sqrt(np.mean(out**2))
    return (out * (rms_in / rms_out if rms_out > 0 else 1.0)).astype(np.float32)


def colored_noise(n: int, color: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-power noise with power spectrum 1/f^a: white a=0, pink a=1, brown a=2."""
    exponent = {"white": 0.0, "pink": 1.0, "brown": 2.0}[color]
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    noise = np.fft.irfft(spec / f ** (exponent / 2.0), n=n)
    noise -= noise.mean()
    return noise / max(np.sqrt(np.mean(noise**2)), 1e-12)


def add_noise(wave: np.ndarray, snr_db: float, color: str, rng: np.random.Generator) -> np.ndarray:
    """Add ``color`` noise at ``snr_db`` relative to the clip's mean power (silences included)."""
    power = float(np.mean(wave.astype(np.float64) ** 2))
    noise = colored_noise(len(wave), color, rng) * np.sqrt(power / 10.0 ** (snr_db / 10.0))
    return (wave + noise).astype(np.float32)


def mulaw(wave: np.ndarray, mu: int = MU) -> np.ndarray:
    """mu-law codec round trip with ``mu + 1`` codes (8 bits): clip to [-1, 1], compand, quantize, expand."""
    x = np.clip(wave.astype(np.float64), -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    q = np.round((y + 1.0) / 2.0 * mu) / mu * 2.0 - 1.0
    return (np.sign(q) * np.expm1(np.abs(q) * np.log1p(mu)) / mu).astype(np.float32)


def apply_channel(wave: np.ndarray, sample_rate: int, cfg: ChannelConfig, rng: np.random.Generator) -> np.ndarray:
    """The channel-shifted test's fixed chain (every effect, every clip): room -> noise -> phone line -> codec.

    Reverb and background noise happen in the room, the band limit and the codec on the line after it.
    """
    rt60 = float(rng.uniform(*cfg.rt60))
    snr = float(rng.uniform(*cfg.snr_db))
    color = cfg.noise_colors[int(rng.integers(len(cfg.noise_colors)))]
    out = reverb(wave, rt60, sample_rate, rng)
    out = add_noise(out, snr, color, rng)
    out = telephone(out, sample_rate, cfg.phone_rate, cfg.band_low_hz)
    return mulaw(out) if cfg.mulaw else out


def augment_wave(wave: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """One random training rendition: gain (always), then each of speed/pitch, reverb, noise, telephone band
    and mu-law with its own probability, with wider ranges than the test channel (SNR 0-20 dB, RT60 0.1-0.8 s,
    white, pink or brown noise)."""
    out = gain(wave, float(rng.uniform(-6.0, 6.0)))
    if rng.random() < 0.5:
        out = speed(out, float(rng.uniform(0.9, 1.1)), sample_rate)
    if rng.random() < 0.5:
        out = reverb(out, float(rng.uniform(0.1, 0.8)), sample_rate, rng)
    if rng.random() < 0.7:
        color = ("white", "pink", "brown")[int(rng.integers(3))]
        out = add_noise(out, float(rng.uniform(0.0, 20.0)), color, rng)
    if rng.random() < 0.5:
        out = telephone(out, sample_rate, int(rng.choice([8000, 11025])), float(rng.uniform(100.0, 400.0)))
    if rng.random() < 0.4:
        out = mulaw(out)
    return out
