"""``trainer.precision: auto``: the precision measured fastest for this model's recurrent core on this machine.

bf16 autocast speeds up some fused CPU cells and slows others, and which ones changes from one CPU (and torch
build) to the next: a table kept by hand went stale (benchmarks/precision.md). So the rule is a measurement:
time forward + backward of the model's own recurrent layers (cell, sizes, layers, the run's batch and window)
in 32-bit and in bf16, alternating rounds so machine noise hits both alike, and take bf16 only when it is
clearly faster (ratio below ``BF16_MARGIN``), since 32-bit is the exact one.

The answer is cached per machine (CPU model, oneDNN bf16, torch version, threads) and shape in
``$SEQPIPE_CACHE_DIR/precision.json`` (default ``~/.cache/seqpipe``): a rerun on the same machine trains in the
same precision, so same config + seed + machine = same bits. The probe draws no random numbers from the run's
generators (fork_rng), so a cache hit and a fresh probe leave training identical. On a GPU bf16 is always faster.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import platform
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

BF16_MARGIN = 0.9  # bf16 must take < 90% of the 32-bit step time: near a tie, the exact precision wins
ROUNDS, STEPS, WARMUP = 5, 4, 2


def cpu_has_fast_bf16() -> bool:
    """Whether oneDNN supports bf16 here (AVX-512 or newer; native speed needs AVX512-BF16/AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cache_path() -> Path:
    if os.environ.get("SEQPIPE_CACHE_DIR"):
        return Path(os.environ["SEQPIPE_CACHE_DIR"]) / "precision.json"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "seqpipe" / "precision.json"


def machine_key() -> str:
    """What makes a measurement valid only here: the CPU, its oneDNN bf16 support, torch, the thread count."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    torch_build = f"torch={torch.__version__}|threads={torch.get_num_threads()}"
    return f"{cpu}|{platform.machine()}|bf16={cpu_has_fast_bf16()}|{torch_build}"


def recurrent_layers(model: nn.Module) -> list[nn.RNNBase]:
    """The fused recurrent layers (nn.RNN/LSTM/GRU) that dominate a recurrent model's step time."""
    return [m for m in model.modules() if isinstance(m, nn.RNNBase)]


def _shape(rnn: nn.RNNBase) -> dict[str, Any]:
    return {
        "mode": rnn.mode,
        "input_size": rnn.input_size,
        "hidden_size": rnn.hidden_size,
        "num_layers": rnn.num_layers,
        "bidirectional": rnn.bidirectional,
    }


def step_seconds(shapes: list[dict[str, Any]], batch: int, seq_len: int, bf16: bool, steps: int = STEPS) -> float:
    """Seconds a step (forward + backward) through fresh layers of these shapes; no global RNG draws."""
    with torch.random.fork_rng(devices=[]):
        gen = torch.Generator().manual_seed(0)
        kinds = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN_TANH": nn.RNN, "RNN_RELU": nn.RNN}
        layers = []
        for s in shapes:
            extra = {"nonlinearity": "relu"} if s["mode"] == "RNN_RELU" else {}
            layers.append(
                kinds[s["mode"]](
                    s["input_size"],
                    s["hidden_size"],
                    s["num_layers"],
                    batch_first=True,
                    bidirectional=s["bidirectional"],
                    **extra,
                )
            )
        inputs = [torch.randn(batch, seq_len, s["input_size"], generator=gen) for s in shapes]
        ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else nullcontext
        for i in range(WARMUP + steps):
            if i == WARMUP:
                t0 = time.perf_counter()
            for layer, x in zip(layers, inputs, strict=True):
                with ctx():
                    out, _ = layer(x)
                out.float().sum().backward()
        return (time.perf_counter() - t0) / steps


def measure(shapes: list[dict[str, Any]], batch: int, seq_len: int, rounds: int = ROUNDS) -> float:
    """bf16 / 32-bit step time: the median over alternating rounds."""
    ratios = []
    for _ in range(rounds):
        fp32 = step_seconds(shapes, batch, seq_len, bf16=False)
        bf16 = step_seconds(shapes, batch, seq_len, bf16=True)
        ratios.append(bf16 / fp32)
    return statistics.median(ratios)


@contextmanager
def _cache_lock(path: Path) -> Iterator[None]:
    """An exclusive lock beside the cache file (none where the folder cannot be written)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path.with_name(path.name + ".lock"), "a")  # noqa: SIM115 -- held for the block
    except OSError:
        yield
        return
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def choose(model: nn.Module, batch: int, seq_len: int) -> dict[str, Any]:
    """The CPU precision for this model: "bf16-mixed" or "32-true", with the measured ratio and where it came from."""
    layers = recurrent_layers(model)
    if not layers:
        return {"precision": "32-true", "reason": "no recurrent layer to measure"}
    if not cpu_has_fast_bf16():
        return {"precision": "32-true", "reason": "oneDNN has no bf16 on this CPU (emulated: slower)"}
    shapes = [_shape(r) for r in layers]
    key = json.dumps({"machine": machine_key(), "shapes": shapes, "batch": batch, "seq_len": seq_len}, sort_keys=True)
    path = cache_path()
    with _cache_lock(path):  # DDP ranks on one machine: the first measures, the others read its answer
        try:
            cache = json.loads(path.read_text())
        except (OSError, ValueError):
            cache = {}
        if key in cache:
            ratio, source = float(cache[key]), f"cached in {path}"
        else:
            ratio, source = round(measure(shapes, batch, seq_len), 4), f"measured now, cached in {path}"
            cache[key] = ratio  # rounded before the comparison, so a cache hit decides exactly as the probe did
            try:  # a read-only home only loses the cache
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")
                os.replace(tmp, path)
            except OSError as e:
                log.warning("could not cache the precision measurement in %s: %s", path, e)
    precision = "bf16-mixed" if ratio < BF16_MARGIN else "32-true"
    return {"precision": precision, "bf16_over_32bit": round(ratio, 3), "reason": source}
