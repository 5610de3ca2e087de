"""The gradient-through-time replay: torch's fused cell functions vs the nn.LSTM module one step a call.

    python benchmarks/probes/bench_grad_replay.py [--cells lstm,gru,rnn] [--rounds 5]

The text recipe's replay (256 units, 16 samples x 64 steps, one thread, 32-bit as the callback runs it):
seqpipe.callbacks.hidden_gradient_norms against the same replay calling the module itself a step at a time (the
previous implementation), alternating, medians of CPU time; also the largest relative difference of the curves.
Writes benchmarks/probes/grad_replay.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from seqpipe.callbacks import hidden_gradient_norms
from seqpipe.data.spec import DataSpec
from seqpipe.models import RecurrentModel


def module_replay(model, batch, max_samples: int = 16) -> torch.Tensor:
    """The replay as it was: the fused module called on one time step at a time."""
    inputs, targets = batch["inputs"][:max_samples], batch["targets"][:max_samples]
    with torch.enable_grad():
        x = model.front(inputs)
        state, hs = None, []
        for t in range(x.shape[1]):
            _, state = model.core.rnn(x[:, t : t + 1], state)
            hs.append(state[0] if isinstance(state, tuple) else state)
        loss = F.cross_entropy(model.head(hs[-1][-1]), targets[:, -1])
        grads = torch.autograd.grad(loss, hs)
    return torch.stack([g.norm(dim=-1).mean() for g in grads]).detach()


def cpu_ms(fn, *args) -> float:
    t = time.process_time()
    fn(*args)
    return (time.process_time() - t) * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", default="lstm,gru,rnn")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "grad_replay.md"))
    args = p.parse_args()
    torch.set_num_threads(1)
    spec = DataSpec(input="tokens", target="next_token", vocab_size=58, causal=True).to_dict()
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(1, 58, (32, 65), generator=gen)
    batch = {"inputs": x[:, :-1], "targets": x[:, 1:]}
    rows = []
    for cell in args.cells.split(","):
        torch.manual_seed(0)
        model = RecurrentModel(spec, cell=cell, hidden_size=256, embedding_dim=64, dropout=0.0).train()
        ref, new = module_replay(model, batch), hidden_gradient_norms(model, batch)
        diff = float(((ref - new).abs() / ref.abs().clamp_min(1e-30)).max())
        old_ms, new_ms = [], []
        for _ in range(args.rounds):
            old_ms.append(cpu_ms(module_replay, model, batch))
            new_ms.append(cpu_ms(hidden_gradient_norms, model, batch))
        o, n = statistics.median(old_ms), statistics.median(new_ms)
        rows.append(f"| {cell} | {o:.0f} ms | {n:.0f} ms | {o / n:.1f}x | {diff:.1e} |")
        print(rows[-1], flush=True)
    md = [
        "# Gradient-through-time replay: fused cell functions vs the module a step at a time",
        "",
        "Reproduce: `python benchmarks/probes/bench_grad_replay.py "
        f"--cells {args.cells} --rounds {args.rounds}` (1x256 units,"
        f" embedding 64, 16 samples x 64 steps, 32-bit, 1 thread; CPU time, medians of {args.rounds} alternating"
        f" runs; {os.cpu_count()} CPUs shared, load average {os.getloadavg()[0]:.1f}).",
        "",
        "| cell | module one step a call | fused cell functions (seqpipe) | speed-up | max relative difference |",
        "|---|---|---|---|---|",
        *rows,
    ]
    Path(args.out).write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
