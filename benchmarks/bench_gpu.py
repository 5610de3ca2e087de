"""GPU throughput: the text LSTM through seqpipe (Lightning, the config's callbacks off) against a plain
PyTorch loop over the same model class and the same batches, and the epoch time of the audio and DNA
CRNNs. Target: seqpipe >= 0.9x the plain loop's tokens/s.

    python benchmarks/run.py gpu [--full]    # on a GPU machine (cuDNN, bf16); skipped, with a row saying so, without

tests/pipeline/test_bench_gpu.py runs ``measure`` on the CPU with a tiny config.
Both sides alternate (A B A B) so machine noise hits them alike; each side's number is the median of its
rounds. The CRNN epochs need their prepared stores (`dvc repro audio_prepare dna_prepare`); a config whose
store is missing is reported as skipped.
"""

from __future__ import annotations

import time
from contextlib import nullcontext

import torch
from harness import ROOT, Result, alternate, ratio

from seqpipe.config import instantiate, load_config


def build(config: str, profile: str, device: str, overrides: list[str]):
    cfg = load_config(
        ROOT / config, [f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}", *overrides], profile=profile
    )
    dm = instantiate(cfg["data"])
    dm.prepare_data()
    dm.setup()
    return cfg, dm


def batches(dm, n: int) -> list[dict[str, torch.Tensor]]:
    out = []
    while len(out) < n:
        for b in dm.train_dataloader():
            out.append(b)
            if len(out) == n:
                break
    return out


def new_model(cfg, dm, seed: int = 0):
    torch.manual_seed(seed)
    return instantiate(cfg["model"], spec=dm.spec.to_dict(), data_info=dm.data_info())


def plain_seconds(cfg, dm, data, device: str, bf16: bool) -> float:
    """Plain PyTorch: the same model's forward, cross entropy, backward, clipping, AdamW step."""
    model = new_model(cfg, dm).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ctx = (lambda: torch.autocast(device, dtype=torch.bfloat16)) if bf16 else nullcontext
    state = None
    for i, b in enumerate(data):
        if i == 2:
            sync(device)
            t = time.perf_counter()
        x, y = b["inputs"].to(device, non_blocking=True), b["targets"].to(device, non_blocking=True)
        h = state[0] if isinstance(state, tuple) else state
        if h is not None and h.shape[1] != x.shape[0]:  # a short last batch starts new lanes
            state = None
        with ctx():
            out, state = model(x, state=state)
            loss = torch.nn.functional.cross_entropy(out.float().reshape(-1, out.shape[-1]), y.reshape(-1))
        state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    sync(device)
    return time.perf_counter() - t


def lightning_seconds(cfg, dm, data, device: str, bf16: bool) -> float:
    import lightning as L

    class Clock(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, idx):
            if idx == 2:
                sync(device)
                self.t = time.perf_counter()

        def on_train_end(self, trainer, module):
            sync(device)
            self.seconds = time.perf_counter() - self.t

    clock = Clock()
    trainer = L.Trainer(
        max_steps=len(data),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=1.0,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        precision="bf16-mixed" if bf16 else "32-true",
        callbacks=[clock],
    )
    trainer.fit(new_model(cfg, dm), train_dataloaders=torch.utils.data.DataLoader(data, batch_size=None))
    return clock.seconds


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def crnn_epoch_seconds(config: str, profile: str, device: str) -> str:
    cfg = load_config(ROOT / config, profile=profile)
    if not (ROOT / cfg["data"]["init_args"]["prepared_dir"] / "meta.json").exists():
        return "skipped (no prepared store)"
    import lightning as L

    dm = instantiate(cfg["data"])
    trainer = L.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        precision="bf16-mixed" if device == "cuda" else "32-true",
    )
    dm.prepare_data()
    dm.setup()
    t = time.perf_counter()
    trainer.fit(new_model(cfg, dm), datamodule=dm)
    return f"{(time.perf_counter() - t) / 2:.2f} s/epoch"


SIZES = {"quick": dict(steps=50, rounds=3), "full": dict(steps=200, rounds=5)}
CRNNS = ("pipelines/audio/crnn.yaml", "pipelines/dna/crnn.yaml")


def measure(
    device: str,
    config: str = "pipelines/text/lstm-gpu.yaml",
    profile: str = "default",
    overrides: tuple[str, ...] = (),
    steps: int = 50,
    rounds: int = 3,
    crnns: tuple[str, ...] = CRNNS,
) -> Result:
    """Tokens/s of the plain loop and of Lightning over the same batches, alternating; then the CRNN epochs."""
    bf16 = device == "cuda"
    cfg, dm = build(config, profile, device, list(overrides))
    data = batches(dm, steps)
    tokens = sum(b["inputs"].numel() for b in data[2:])
    secs = alternate(
        {
            "plain": lambda: plain_seconds(cfg, dm, data, device, bf16),
            "seqpipe": lambda: lightning_seconds(cfg, dm, data, device, bf16),
        },
        rounds,
    )
    r = Result("gpu")
    r.add("device", f"{torch.cuda.get_device_name(0) if device == 'cuda' else 'CPU'}, {'bf16' if bf16 else '32-bit'}")
    r.add(f"text LSTM ({config}), plain PyTorch", f"{tokens / secs['plain'].median:,.0f} tokens/s")
    r.add("the same through seqpipe/Lightning", f"{tokens / secs['seqpipe'].median:,.0f} tokens/s")
    r.add("seqpipe / plain tokens/s (target >= 0.9x)", f"{ratio(secs['plain'], secs['seqpipe']):.2f}x")
    for crnn in crnns:
        r.add(f"{crnn} epoch", crnn_epoch_seconds(crnn, profile, device))
    r.about = (
        f"{steps} batches (the first 2 untimed), medians of {rounds} alternating rounds; Lightning with the config's "
        "callbacks off against a plain loop (same model class, batches, AdamW, clipping); CRNN epochs need their "
        "prepared stores (`dvc repro audio_prepare dna_prepare`), else skipped."
    )
    return r


def run(quick: bool = True) -> Result:
    """The GPU measurement, or a skipped row where there is no CUDA device."""
    if not torch.cuda.is_available():
        return Result("gpu", skipped="no CUDA device (torch.cuda.is_available() is False)")
    return measure("cuda", **SIZES["quick" if quick else "full"])
