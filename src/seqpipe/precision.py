"""``trainer.precision: auto``: the precision measured fastest for this model's whole training step on this machine.

bf16 autocast speeds up some fused CPU cells and slows others, and which ones changes from one CPU (and torch
build) to the next: a table kept by hand went stale (benchmarks/probes/precision.md). So the rule is a measurement:
time the model's own training step (a synthetic batch of the run's size and window through forward, loss,
backward, gradient clipping and AdamW) in 32-bit and under bf16 autocast, alternating rounds so machine noise
hits both alike, and take bf16 only when it is clearly faster (ratio below ``BF16_MARGIN``), since 32-bit is the
exact one. The whole step, not the recurrent layer alone: timing only the layer called the vanilla RNN 0.88x in
bf16, while its whole step (embedding, head, loss, optimizer, the casts between them) was a tie.

The answer is cached per machine (CPU model, oneDNN bf16, torch version, threads) and model shape in
``$SEQPIPE_CACHE_DIR/precision.json`` (default ``~/.cache/seqpipe``): a rerun on the same machine trains in the
same precision, so same config + seed + machine = same bits. The probe trains a copy of the model and draws no
random numbers from the run's generators (fork_rng), so a cache hit and a fresh probe leave training identical.
On a GPU bf16 is always faster.
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import json
import logging
import os
import platform
import statistics
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seqpipe import io

log = logging.getLogger(__name__)

BF16_MARGIN = 0.9  # bf16 must take < 90% of the 32-bit step time: near a tie, the exact precision wins
# A fresh measurement within this distance of the margin is noise (the text GRU measured 0.815-0.897 from one run
# to the next on one machine): it chooses 32-bit, and the choice itself is cached, so one machine decides one way.
# Entries cached before the choice was recorded (a bare ratio) decide as they did: ratio < BF16_MARGIN.
BF16_BAND = 0.05
CHOICE = "choice|"  # cache key prefix of a recorded choice, beside the bare ratio
last_choice: dict[str, Any] | None = None  # this process's latest measured choice, recorded with the run
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


def model_key(model: nn.Module) -> str:
    """What makes a measurement valid only for this model: its class, data contract, parameter shapes and
    optimizer kernel."""
    shapes = [[name, list(p.shape)] for name, p in model.named_parameters()]
    digest = hashlib.sha1(json.dumps(shapes).encode()).hexdigest()[:16]
    fused = "|fused" if getattr(model, "hparams", {}).get("fused_optimizer") else ""  # the probe's optimizer too
    return f"{type(model).__qualname__}|{json.dumps(model.spec.to_dict(), sort_keys=True)}|params={digest}{fused}"


def synthetic_batch(spec: Any, batch: int, seq_len: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets of the run's shape, drawn from ``gen`` (the values do not change the step's cost)."""
    if spec.input == "tokens":
        inputs = torch.randint(0, spec.vocab_size, (batch, seq_len), generator=gen)
    else:
        inputs = torch.randn(batch, seq_len, spec.feature_dim, generator=gen)
    kind = spec.kind
    if kind.per_step:
        targets = torch.randint(0, spec.num_classes or spec.vocab_size, (batch, seq_len), generator=gen)
    elif kind.loss == "cross_entropy":
        targets = torch.randint(0, spec.num_classes, (batch,), generator=gen)
    else:
        targets = torch.randn(batch, spec.output_dim, generator=gen)
    return inputs, targets


def bf16_forward_context() -> AbstractContextManager[None]:
    """The autocast Lightning's bf16-mixed wraps a training step in, with its settings: Lightning 2.6 turns the
    autocast weight cache off; a probe under torch's default autocast (cache on) could time a step that training
    never runs (how much the cache is worth here is not settled: benchmarks/probes/precision.md)."""
    from lightning.pytorch.plugins.precision import MixedPrecision

    return MixedPrecision("bf16-mixed", "cpu").forward_context()


def step_seconds(model: nn.Module, batch: int, seq_len: int, bf16: bool, steps: int = STEPS) -> float:
    """Seconds a training step of a copy of ``model`` takes: forward + loss (under Lightning's bf16 autocast),
    backward, clipping, AdamW. The model itself is left untouched and no global RNG is drawn from."""
    with torch.random.fork_rng(devices=[]):
        copy_ = copy.deepcopy(model).train()
        inputs, targets = synthetic_batch(copy_.spec, batch, seq_len, torch.Generator().manual_seed(0))
        params = [p for p in copy_.parameters() if p.requires_grad]
        fused = bool(getattr(copy_, "hparams", {}).get("fused_optimizer", False)) or None  # as training steps
        opt = torch.optim.AdamW(params, lr=1e-4, fused=fused)
        ctx = bf16_forward_context if bf16 else nullcontext
        for i in range(WARMUP + steps):
            if i == WARMUP:
                t0 = time.perf_counter()
            with ctx():
                output, _ = copy_(inputs)
                loss, _ = copy_.loss_and_metrics(output, targets)
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
        return (time.perf_counter() - t0) / steps


def measure(model: nn.Module, batch: int, seq_len: int, rounds: int = ROUNDS) -> float:
    """bf16 / 32-bit training step time: the median over alternating rounds."""
    ratios = []
    for _ in range(rounds):
        fp32 = step_seconds(model, batch, seq_len, bf16=False)
        bf16 = step_seconds(model, batch, seq_len, bf16=True)
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
    spec = getattr(model, "spec", None)
    if spec is None or not spec.kind.recurrent or not hasattr(model, "loss_and_metrics"):
        return {"precision": "32-true", "reason": f"no training step probe for {type(model).__name__}: 32-bit, exact"}
    if not cpu_has_fast_bf16():
        return {"precision": "32-true", "reason": "oneDNN has no bf16 on this CPU (emulated: slower)"}
    if getattr(getattr(model, "pool", None), "mode", None) == "flatten" and spec.max_len:
        seq_len = int(spec.max_len)  # a flattening head takes exactly the spec's length, whatever the data's window
    key = json.dumps({"machine": machine_key(), "model": model_key(model), "batch": batch, "seq_len": seq_len})
    path = cache_path()
    with _cache_lock(path):  # DDP ranks on one machine: the first measures, the others read its answer
        try:
            cache = json.loads(path.read_text())
        except (OSError, ValueError):
            cache = {}
        if key in cache:
            ratio, precision = decided(cache, key)
            source = f"cached in {path}"
        else:
            ratio = round(measure(model, batch, seq_len), 4)  # rounded: a cache hit decides as the probe did
            precision = decide_fresh(ratio)
            cache[key], cache[CHOICE + key] = ratio, precision  # the ratio stays a bare number (older readers)
            try:  # a read-only home only loses the cache
                io.write_json(path, cache, indent=1, sort_keys=True)
                source = f"measured now, cached in {path}"
            except OSError as e:
                log.warning("could not cache the precision measurement in %s: %s", path, e)
                source = f"measured now, not cached ({path} is not writable)"
    global last_choice
    last_choice = {"precision": precision, "bf16_over_32bit": round(ratio, 3), "reason": source}
    return dict(last_choice)


def decide_fresh(ratio: float) -> str:
    """A new measurement's choice: bf16 only when clearly below the margin (outside the noise band)."""
    return "bf16-mixed" if ratio < BF16_MARGIN - BF16_BAND else "32-true"


def decided(cache: dict[str, Any], key: str) -> tuple[float, str]:
    """A cached ratio and its choice: the recorded choice, or for a ratio cached before choices were recorded the
    rule it was cached under (ratio < BF16_MARGIN), so an existing cache keeps deciding the same way."""
    ratio = float(cache[key])
    return ratio, str(cache.get(CHOICE + key) or ("bf16-mixed" if ratio < BF16_MARGIN else "32-true"))
