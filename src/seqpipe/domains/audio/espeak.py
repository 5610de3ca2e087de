"""The espeak-ng engine behind ``seqpipe.domains.audio.speech.synthesize``: libespeak-ng through ctypes, one
pristine forked copy an utterance, or the espeak-ng command when the library package is missing.

Separate from speech.py because this is the process plumbing (a helper process a concurrent caller, a fork
a call, a length-prefixed pipe protocol), while speech.py holds what a caller sees: voices, noise, trimming.
``engine()`` is the process-wide pool (None without espeakng-loader); ``speak_cli`` the command fallback.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import shutil
import subprocess
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from seqpipe.errors import SeqpipeError

SAMPLE_RATE = 22050  # espeak-ng's native output rate
AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
ESPEAK_CHARS_UTF8 = 1
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE = 1, 2, 3, 4
MIN_SPEED, MAX_SPEED = 80, 450  # words per minute espeak-ng accepts
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class _Engine:
    """The process-wide libespeak-ng handle (the C library keeps global state: one at a time)."""

    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.data_path = espeakng_loader.get_data_path()
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        rate = self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path.encode(), 0)
        if rate != SAMPLE_RATE:
            raise SeqpipeError(
                f"libespeak-ng initialization returned {rate}", where=self.data_path, fix="reinstall espeakng-loader"
            )
        self.chunks: list[np.ndarray] = []
        self._cb = _CALLBACK(self._collect)  # keep a reference: the C side holds only the pointer
        self.lib.espeak_SetSynthCallback(self._cb)
        self.lock = threading.Lock()

    def _collect(self, wav, n, events) -> int:
        if n > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # 0 = continue

    def speak(self, text: str, voice: str, speed: int, pitch: int, pitch_range: int, seed: int) -> np.ndarray:
        with self.lock:
            # many variants add random breath/flutter: reseed the engine's generator every call
            self.lib.espeak_ng_SetRandSeed(int(seed))
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise SeqpipeError(
                    f"unknown espeak-ng voice '{voice}'",
                    where="voice",
                    fix="use a language+variant name such as en+f3 (see english_voices())",
                )
            self.lib.espeak_SetParameter(PARAM_RATE, int(speed), 0)
            self.lib.espeak_SetParameter(PARAM_PITCH, int(pitch), 0)
            self.lib.espeak_SetParameter(PARAM_RANGE, int(pitch_range), 0)
            self.lib.espeak_SetParameter(PARAM_VOLUME, 100, 0)
            self.chunks = []
            buf = ctypes.create_string_buffer(text.encode("utf-8"))
            err = self.lib.espeak_Synth(buf, len(buf), 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None)
            self.lib.espeak_Synchronize()
            if err != 0:
                raise SeqpipeError(f"espeak_Synth failed with code {err}", where=repr(text))
            out = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)
            self.chunks = []
            return out


class _Zygote:
    """A small helper process that holds an initialized, never-used engine and forks a fresh copy of
    it for every utterance.

    libespeak-ng keeps synthesis state in C statics from one utterance to the next (the pitch
    flutter phase, the echo buffer), which re-initialization does not reset: in one process the
    same call gives different samples depending on what was said before. A forked child starts from
    the identical initialized state every time, so each result depends only on its own arguments
    (and requests may come in any order). A fork of this small process costs about a millisecond.
    """

    def __init__(self) -> None:
        import subprocess
        import sys

        self.errors = tempfile.TemporaryFile()  # a file, not a pipe: chatter on stderr can never block the helper
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from seqpipe.domains.audio.espeak import _serve; _serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
        )
        self.lock = threading.Lock()

    def speak(self, *args) -> np.ndarray:
        with self.lock:
            try:
                self.proc.stdin.write((json.dumps(args) + "\n").encode())
                self.proc.stdin.flush()
                head = self.proc.stdout.read(8)
            except BrokenPipeError:
                head = b""
            if len(head) < 8:
                self.proc.wait(timeout=10)
                self.errors.seek(0)
                err = self.errors.read().decode(errors="replace")
                raise SeqpipeError(
                    f"the speech helper process died: {err.strip()[-500:]}",
                    where="seqpipe.domains.audio.speech",
                    fix="reinstall espeakng-loader",
                )
            n = int.from_bytes(head, "little", signed=True)
            body = self.proc.stdout.read(abs(n))
        if n < 0:
            problem, where, fix = json.loads(body.decode())
            raise SeqpipeError(problem, where=where, fix=fix)
        return np.frombuffer(body, dtype=np.int16).copy()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)


def _serve() -> None:
    """The helper process: one JSON request a line on stdin -> length-prefixed int16 samples on stdout."""
    import os
    import sys

    engine = _Engine()
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        args = json.loads(line)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: a pristine engine, used once
            os.close(r)
            try:
                body = engine.speak(*args).tobytes()
                head = len(body).to_bytes(8, "little", signed=True)
            except SeqpipeError as e:
                body = json.dumps([e.problem, e.where, e.fix]).encode()
                head = (-len(body)).to_bytes(8, "little", signed=True)
            with os.fdopen(w, "wb") as f:
                f.write(head + body)
            os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            data = f.read()
        _, status = os.waitpid(pid, 0)
        if len(data) < 8 or status != 0:  # the child crashed: answer with an error, never with nothing
            body = json.dumps(
                [
                    f"the espeak-ng worker died (wait status {status}) speaking {args[0]!r}",
                    args[1],
                    "try another voice or text",
                ]
            ).encode()
            data = (-len(body)).to_bytes(8, "little", signed=True) + body
        out.write(data)
        out.flush()


class _Pool:
    """Helper processes handed out one per concurrent caller (threads may synthesize in parallel)."""

    def __init__(self) -> None:
        self.free: list[_Zygote] = []
        self.all: list[_Zygote] = []
        self.lock = threading.Lock()
        atexit.register(self.close)

    def speak(self, *args) -> np.ndarray:
        with self.lock:
            z = self.free.pop() if self.free else None
            if z is None:
                z = _Zygote()
                self.all.append(z)
        try:
            return z.speak(*args)
        finally:
            with self.lock:
                if z.proc.poll() is None:  # a dead helper is dropped; the next call starts a new one
                    self.free.append(z)

    def close(self) -> None:
        for z in self.all:
            z.close()


@lru_cache(maxsize=1)
def engine() -> _Pool | None:
    try:
        import espeakng_loader  # noqa: F401
    except ImportError:
        return None
    return _Pool()


def speak_cli(text: str, voice: str, speed: int, pitch: int, pitch_range: int) -> np.ndarray:
    import soundfile as sf

    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SeqpipeError(
            "no speech engine: neither the espeakng-loader package nor the espeak-ng command",
            where="seqpipe.domains.audio.speech",
            fix="pip install espeakng-loader",
        )
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "out.wav"
        subprocess.run(
            [exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-a", "100", "-w", str(out), text],
            check=True,
            capture_output=True,
        )
        samples, sr = sf.read(out, dtype="int16")
    if sr != SAMPLE_RATE:
        raise SeqpipeError(f"espeak-ng wrote {sr} Hz, expected {SAMPLE_RATE}", where=exe)
    return samples
