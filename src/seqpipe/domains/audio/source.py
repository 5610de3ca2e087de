"""Reading audio clips: list a folder or a CSV manifest, validate headers, decode to float32 mono.

``source`` is a folder in the Speech Commands layout -- one subfolder a label, clips inside,
``<speaker>_nohash_<n>.wav`` names give the speaker -- or a CSV manifest with columns
``path,label[,speaker]`` (paths relative to the manifest). WAV, FLAC and OGG at any sample rate,
mono or stereo, decoded with soundfile, mixed to mono, resampled (soxr) to ``sample_rate``.
Folders whose name starts with '_' (Speech Commands' ``_background_noise_``) and files at the top
level (README, lists) are not clips and are ignored.

Decoding checks the header first (``read_clip``): a sample rate outside 1-768 kHz, no samples, more
than 12 hours, or fewer than ``min_samples`` at ``sample_rate`` is bad input; then only the kept
centre of a long clip is decoded. 8-bit unsigned, 16/24/32-bit PCM, float and double WAVs all read.

Bad input (unreadable, truncated, empty, too short or silent file, implausible header, NaN/inf samples, a
peak over MAX_PEAK, unsupported format, empty label folder, missing manifest file, non-UTF-8 manifest) goes through a
``SkipLog``: strict stops with a SeqpipeError naming the file and the problem; lenient records path
and reason and goes on.
"""

from __future__ import annotations

import csv
import logging
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqpipe.errors import SeqpipeError

logger = logging.getLogger(__name__)

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg"}
SILENCE_PEAK = 1e-4  # a clip whose peak stays below -80 dBFS is silent
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 768_000  # a header outside this range is corrupt, not a clip
MAX_CLIP_SECONDS = 12 * 3600.0
# decoded samples are full scale at |x| = 1; a float WAV may go a little over, but a peak past this is a file
# written in other units or damaged, and its squares would overflow the float32 features to inf
MAX_PEAK = 1e3


@dataclass(frozen=True)
class Clip:
    path: Path
    label: str
    speaker: str | None = None


class SkipLog:
    """Strict: raise on the first bad input. Lenient: record (path, reason) and go on."""

    def __init__(self, strict: bool):
        self.strict = strict
        self.items: list[dict[str, str]] = []

    def bad(self, where: Path | str, problem: str, fix: str) -> None:
        if self.strict:
            raise SeqpipeError(problem, where=where, fix=fix + " (or set data.strict: false to skip such files)")
        self.items.append({"path": str(where), "reason": problem})
        logger.warning("audio: skipped %s: %s", where, problem)


# -- listing clips ----------------------------------------------------------------------------
def speaker_of(path: Path) -> str | None:
    """Speech Commands naming: '<speaker>_nohash_<n>.wav' -> speaker."""
    return path.stem.split("_nohash_")[0] if "_nohash_" in path.stem else None


def scan_folder(root: Path, log: SkipLog) -> list[Clip]:
    """Clips from label subfolders; unsupported files and empty label folders are bad input."""
    if not root.is_dir():
        raise SeqpipeError("audio folder not found", where=root, fix="check data.source (a folder or a .csv manifest)")
    clips: list[Clip] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not files:
            log.bad(folder, "empty label folder (no audio files)", "add clips or remove the folder")
            continue
        for f in files:
            if f.suffix.lower() not in AUDIO_SUFFIXES:
                log.bad(
                    f,
                    f"unsupported format '{f.suffix}' (expected {sorted(AUDIO_SUFFIXES)})",
                    "convert it to WAV/FLAC/OGG or remove it",
                )
                continue
            clips.append(Clip(f, folder.name, speaker_of(f)))
    if not clips and not log.items:
        raise SeqpipeError(
            "no label subfolders with audio files",
            where=root,
            fix="lay clips out as <folder>/<label>/<clip>.wav, or pass a CSV manifest",
        )
    return clips


def read_manifest(path: Path, log: SkipLog) -> list[Clip]:
    """CSV with columns path,label[,speaker]; relative paths are relative to the manifest's folder."""
    if not path.is_file():
        raise SeqpipeError("manifest not found", where=path, fix="check data.source")
    try:
        return _read_manifest(path, log)
    except UnicodeDecodeError as e:
        raise SeqpipeError(
            f"manifest is not UTF-8 text (byte 0x{e.object[e.start]:02x})", where=path, fix="save the manifest as UTF-8"
        ) from e
    except csv.Error as e:
        raise SeqpipeError(
            f"malformed manifest CSV: {e}", where=path, fix="check quoting; columns path,label[,speaker]"
        ) from e


def _read_manifest(path: Path, log: SkipLog) -> list[Clip]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        cols = set(reader.fieldnames or [])
        if not {"path", "label"} <= cols:
            raise SeqpipeError(
                f"manifest columns are {sorted(cols)}, need path,label[,speaker]",
                where=path,
                fix="add a header row: path,label,speaker",
            )
        clips = []
        for i, row in enumerate(reader, start=2):
            raw = (row.get("path") or "").strip()
            p = Path(raw)
            p = p if p.is_absolute() else path.parent / p
            where = f"{path}:{i} ({raw})"
            if not raw:
                log.bad(f"{path}:{i}", "row has no path", "fill the path column or remove the row")
            elif not row.get("label"):
                log.bad(where, "row has no label", "fill the label column")
            elif not p.is_file():
                log.bad(where, "file in manifest does not exist", "fix the path or remove the row")
            elif p.suffix.lower() not in AUDIO_SUFFIXES:
                log.bad(where, f"unsupported format '{p.suffix}'", "convert it to WAV/FLAC/OGG or remove the row")
            else:
                clips.append(Clip(p, row["label"], row.get("speaker") or None))
    return clips


def list_clips(source: str | Path, log: SkipLog) -> list[Clip]:
    source = Path(source)
    return read_manifest(source, log) if source.suffix.lower() == ".csv" else scan_folder(source, log)


# -- decoding ---------------------------------------------------------------------------------
def _check_wav_chunks(path: Path, size: int) -> str | None:
    """libsndfile reads a truncated WAV without complaint; compare the RIFF sizes with the file's."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            return None  # not RIFF/WAVE: let the decoder judge it
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            cid, clen = struct.unpack("<4sI", f.read(8))
            if cid == b"data":
                if head[:4] == b"RIFF" and pos + 8 + clen > size:
                    return f"truncated: the data chunk declares {clen} bytes, the file holds {size - pos - 8}"
                return None
            pos += 8 + clen + (clen & 1)
    return "no 'data' chunk (corrupt or truncated header)"


def load_audio(
    path: str | Path, sample_rate: int, max_seconds: float | None = None, min_samples: int = 1
) -> np.ndarray:
    """Decode one file -> float32 mono at ``sample_rate`` (only the centered ``max_seconds`` when given).
    Raises SeqpipeError naming the file."""
    return read_clip(path, sample_rate, max_seconds, min_samples)[0]


def read_clip(
    path: str | Path, sample_rate: int, max_seconds: float | None = None, min_samples: int = 1
) -> tuple[np.ndarray, float]:
    """(float32 mono wave at ``sample_rate``, the file's duration in seconds).

    The header is checked before anything is decoded: a sample rate outside MIN..MAX_SAMPLE_RATE, a
    duration over MAX_CLIP_SECONDS, no samples, or fewer than ``min_samples`` at ``sample_rate`` are
    errors. With ``max_seconds`` only the centered part that is kept (plus a little resampler context)
    is decoded, then cropped to exactly ``max_seconds`` -- the same samples a full decode + ``crop`` gives
    when no resampling is needed.
    """
    import soundfile as sf
    import soxr

    path = Path(path)
    if path.suffix.lower() not in AUDIO_SUFFIXES:
        raise SeqpipeError(
            f"unsupported format '{path.suffix}' (expected {sorted(AUDIO_SUFFIXES)})",
            where=path,
            fix="convert it to WAV/FLAC/OGG",
        )
    if not path.is_file():
        raise SeqpipeError("audio file not found", where=path)
    size = path.stat().st_size
    if size == 0:
        raise SeqpipeError("zero-length file (0 bytes)", where=path, fix="re-export or remove it")
    if path.suffix.lower() == ".wav" and (problem := _check_wav_chunks(path, size)):
        raise SeqpipeError(problem, where=path, fix="re-export or remove the file")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise SeqpipeError(
            f"cannot decode audio (corrupt or truncated?): {e}", where=path, fix="re-export or remove the file"
        ) from e
    sr, frames = int(info.samplerate), int(info.frames)
    if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        raise SeqpipeError(
            f"header declares a sample rate of {sr} Hz (plausible: {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz); "
            f"decoding would resample {frames} samples to {frames * sample_rate / max(sr, 1):.0f}",
            where=path,
            fix="fix the header's rate (e.g. re-export the file) or remove it",
        )
    if frames <= 0:
        raise SeqpipeError("file holds no audio samples", where=path, fix="remove it")
    seconds = frames / sr
    if seconds > MAX_CLIP_SECONDS:
        raise SeqpipeError(
            f"header declares {seconds / 3600:.1f} hours of audio (over {MAX_CLIP_SECONDS / 3600:.0f} h): "
            f"not a clip, or a corrupt header",
            where=path,
            fix="cut the recording into clips or remove it",
        )
    if frames * sample_rate / sr < min_samples:
        raise SeqpipeError(
            f"clip too short: {frames} sample(s) at {sr} Hz ({1000 * seconds:.2f} ms); a clip needs at "
            f"least {min_samples} samples at {sample_rate} Hz ({1000 * min_samples / sample_rate:.0f} ms, "
            f"one analysis window)",
            where=path,
            fix="remove it or pad the recording",
        )
    start, count, max_samples = 0, frames, None
    if max_seconds is not None:
        max_samples = int(max_seconds * sample_rate)
        keep = int(np.ceil(max_samples * sr / sample_rate))
        if frames > keep:
            margin = 0 if sr == sample_rate else int(np.ceil(0.05 * sr))  # resampler context either side
            centre = (frames - keep) // 2
            step = sr // math.gcd(sr, sample_rate)  # start on a sample shared by both rates' grids
            start = max(0, centre - margin) // step * step
            count = min(frames, centre + keep + margin) - start
    try:
        data, sr = sf.read(str(path), start=start, frames=count, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise SeqpipeError(
            f"cannot decode audio (corrupt or truncated?): {e}", where=path, fix="re-export or remove the file"
        ) from e
    if data.shape[0] == 0:
        raise SeqpipeError("file holds no audio samples", where=path, fix="remove it")
    wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if sr != sample_rate:
        wave = soxr.resample(wave, sr, sample_rate, quality="HQ").astype(np.float32)
    if max_samples is not None and len(wave) > max_samples:
        whole = start == 0 and count == frames
        total = len(wave) if whole else int(round(frames * sample_rate / sr))  # the full clip's length at sample_rate
        local = (total - max_samples) // 2 - start * sample_rate // sr
        local = min(max(0, local), max(0, len(wave) - max_samples))
        wave = wave[local : local + max_samples]
    if not np.isfinite(wave).all():
        raise SeqpipeError("audio holds NaN/inf samples", where=path, fix="re-export the file")
    if (peak := float(np.abs(wave).max())) > MAX_PEAK:
        raise SeqpipeError(
            f"implausible peak {peak:.3g} after decoding (full scale is 1.0; more than {MAX_PEAK:g} is refused)",
            where=path,
            fix="rescale the float WAV to [-1, 1] (or re-export it as PCM) or remove it",
        )
    if peak < SILENCE_PEAK:
        raise SeqpipeError("all-silent clip (peak below -80 dBFS)", where=path, fix="remove it or check the recording")
    return wave, seconds


def crop(wave: np.ndarray, max_samples: int) -> np.ndarray:
    """Center crop to at most ``max_samples``."""
    if len(wave) <= max_samples:
        return wave
    start = (len(wave) - max_samples) // 2
    return wave[start : start + max_samples]
