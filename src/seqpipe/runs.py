"""A training run's files: one run of an experiment at a time, resumable, never half-published.

    models/.<name>.lock     fcntl lock: a second `seqpipe fit` of the same experiment is refused
    models/.<name>.tmp/     the run's work dir: checkpoints (written atomically, last.ckpt every
                            fit.checkpoint_every_n_steps), curves, run_state.json (its MLflow run)
    models/<name>/          the published model: the work dir renamed in when training is complete

`seqpipe fit --resume` continues the interrupted run from models/.<name>.tmp/last.ckpt, in the same
MLflow run. A resumed run ends with the weights of an uninterrupted one: the checkpoint carries the
optimizer, schedule, loop position, RNG state, the carried TBPTT state and the callbacks' curves, and
the data order is a function of (seed, epoch) (data/sampling.py) that skips the batches already seen.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from seqpipe import io
from seqpipe.errors import SeqpipeError

log = logging.getLogger(__name__)

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def process_rank() -> int:
    """This process's global rank when it was started by torchrun, SLURM or Lightning's DDP launcher
    (before torch.distributed is up); 0 for a plain run. Only rank 0 owns the run's files."""
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(var, "").isdigit() and (
            var != "SLURM_PROCID" or int(os.environ.get("SLURM_NTASKS", "1")) > 1
        ):
            return int(os.environ[var])
    return 0


def wait_for_store(prepared_dir: Path, timeout: float = 3600.0) -> None:
    """Ranks > 0 wait for rank 0 to build the prepared store instead of building it too."""
    import time

    deadline = time.time() + timeout
    while not (prepared_dir / "meta.json").exists():
        if time.time() > deadline:
            raise SeqpipeError(
                "rank 0 did not build the prepared store in time",
                where=prepared_dir,
                fix="run `seqpipe preprocess` first",
            )
        time.sleep(1.0)


def check_name(name: Any, where: Any = None) -> str:
    """An experiment name is a plain file name: it becomes models/<name>, metrics/<name>.json."""
    if not isinstance(name, str) or not NAME.fullmatch(name) or name in (".", "..") or ".." in name:
        raise SeqpipeError(
            f"experiment name {name!r} is not a plain name",
            where=where,
            fix="use letters, digits and _ . - (e.g. text-lstm-512)",
        )
    return name


@contextlib.contextmanager
def experiment_lock(models: Path, name: str) -> Iterator[None]:
    """Hold models/.<name>.lock for the run; a second fit of the same experiment fails at once."""
    models.mkdir(parents=True, exist_ok=True)
    path = models / f".{name}.lock"
    with open(path, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SeqpipeError(
                f"another `seqpipe fit` of {name} is running",
                where=path,
                fix="wait for it to finish (or stop it); one run of an experiment at a time",
            ) from None
        f.write(f"{os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def resume_checkpoint(resume: str | None, work_dir: Path) -> Path | None:
    """The checkpoint to continue from: "auto" = the interrupted run's last.ckpt, else a path."""
    if resume is None:
        return None
    ckpt = work_dir / "last.ckpt" if resume == "auto" else Path(resume)
    if not ckpt.is_file():
        fix = (
            "nothing to resume: start it with `seqpipe fit` (without --resume)"
            if resume == "auto"
            else "pass an existing checkpoint, e.g. models/<name>/last.ckpt, or --resume alone"
        )
        raise SeqpipeError("checkpoint to resume from not found", where=ckpt, fix=fix)
    return ckpt


def prepare_work_dir(work_dir: Path, ckpt: Path | None) -> dict[str, Any]:
    """Keep the work dir when resuming from a checkpoint inside it (returns its run state); else start clean."""
    state_file = work_dir / "run_state.json"
    if ckpt is not None and ckpt.resolve().parent == work_dir.resolve():
        return json.loads(state_file.read_text()) if state_file.exists() else {}
    if (work_dir / "last.ckpt").exists():
        log.info("discarding the interrupted run in %s (`seqpipe fit --resume` would continue it)", work_dir)
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    return {}


def publish(work_dir: Path, final_dir: Path) -> None:
    """Swap the finished work dir in: old away, new in, then old deleted (a crash leaves one of them whole)."""
    io.publish_dir(work_dir, final_dir, old=final_dir.with_name(f".{final_dir.name}.old"))


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save to a temporary file, fsync, rename: a kill mid-write leaves the previous checkpoint."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        io.write_with(path, lambda f: torch.save(checkpoint, f))


class RngState(L.Callback):
    """Saves and restores the global torch RNG (dropout draws) with every checkpoint."""

    def state_dict(self) -> dict[str, Any]:
        state = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


BUDGET_KEYS = {"max_steps", "max_epochs", "max_time", "enable_progress_bar"}  # a resume may extend the budget


def _flat(section: Any, prefix: str) -> dict[str, str]:
    if not isinstance(section, dict):
        return {prefix: json.dumps(section, sort_keys=True, default=str)}
    out: dict[str, str] = {}
    for k, v in section.items():
        out.update(_flat(v, f"{prefix}.{k}"))
    return out


def resumed_sections(cfg: dict[str, Any]) -> dict[str, Any]:
    """The config sections a resume must not change (recorded in run_state.json)."""
    trainer = {k: v for k, v in (cfg.get("trainer") or {}).items() if k not in BUDGET_KEYS}
    return json.loads(json.dumps({"model": cfg.get("model"), "trainer": trainer, "fit": cfg.get("fit")}, default=str))


def check_resume(cfg: dict[str, Any], ckpt: Path, state: dict[str, Any], hparams: dict[str, Any]) -> bool:
    """Refuse a resume whose hyperparameters differ from the checkpoint's run (naming the keys); False when the
    checkpoint already holds the whole budget (nothing to resume)."""
    try:
        saved = torch.load(ckpt, map_location="cpu", weights_only=False, mmap=True)
    except Exception as e:  # noqa: BLE001 -- any unreadable checkpoint is the same user problem
        raise SeqpipeError(f"cannot read the checkpoint to resume from: {e}", where=ckpt, fix="pass another one") from e
    a, b = _flat(saved.get("hyper_parameters") or {}, "model"), _flat(dict(hparams), "model")
    changed = {k for k in a.keys() & b.keys() if a[k] != b[k]}
    if state.get("config"):
        a, b = _flat(state["config"], "cfg"), _flat(resumed_sections(cfg), "cfg")
        in_cfg = {k[4:] for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
        changed = in_cfg | {k for k in changed if k.replace("model.", "model.init_args.", 1) not in in_cfg}
    if changed:
        raise SeqpipeError(
            f"--resume with changed hyperparameters: {', '.join(sorted(changed))} differ from the checkpoint's run",
            where=ckpt,
            fix="resume with the run's settings, or start a new run without --resume",
        )
    budget = (cfg.get("trainer") or {}).get("max_steps")
    if budget is not None and int(budget) > 0 and int(saved.get("global_step", 0)) >= int(budget):
        return False
    return True
