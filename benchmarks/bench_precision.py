"""Which precision is fastest for each recurrent cell on this CPU: bf16 autocast or 32-bit?

The text recipe's step (one layer of 256 units, embedding 64, batch 32 x 64 characters, forward + backward +
AdamW), timed alternately in both precisions so machine noise hits both alike; one thread, as the stages run.
Writes the table to benchmarks/precision.md. `trainer.precision: auto` (training._trainer_kwargs) follows it.

    python benchmarks/bench_precision.py [--steps 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from seqpipe.data.spec import DataSpec
from seqpipe.models import RecurrentModel
from seqpipe.training import cpu_has_fast_bf16


def step_seconds(cell: str, bf16: bool, steps: int) -> float:
    torch.manual_seed(0)
    spec = DataSpec(input="tokens", target="next_token", vocab_size=60, causal=True).to_dict()
    m = RecurrentModel(spec, cell=cell, hidden_size=256, num_layers=1, embedding_dim=64)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    x = torch.randint(0, 60, (32, 65))
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else nullcontext
    for i in range(steps + 5):
        if i == 5:
            t = time.perf_counter()
        with ctx():
            out, _ = m(x[:, :-1])
            loss = torch.nn.functional.cross_entropy(out.float().reshape(-1, 60), x[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - t) / steps


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = ["| cell | 32-bit ms/step | bf16 ms/step | bf16 / 32-bit | faster |", "|---|---|---|---|---|"]
    for cell in ("rnn", "lstm", "gru"):
        fp32, bf16 = [], []
        for _ in range(args.rounds):  # alternate, so noise hits both
            fp32.append(step_seconds(cell, False, args.steps))
            bf16.append(step_seconds(cell, True, args.steps))
        a, b = min(fp32) * 1e3, min(bf16) * 1e3
        rows.append(f"| {cell} | {a:.1f} | {b:.1f} | {b / a:.2f}x | {'bf16' if b < a else '32-bit'} |")
        print(rows[-1], flush=True)
    text = "\n".join(
        [
            "# Precision per recurrent cell on CPU",
            "",
            f"`python benchmarks/bench_precision.py --steps {args.steps} --rounds {args.rounds}` (1 thread; best of "
            f"{args.rounds} alternating rounds; oneDNN bf16 available: {cpu_has_fast_bf16()}). The text recipe's step: "
            "1 x 256 units, batch 32 x 64, forward + backward + AdamW.",
            "",
            *rows,
            "",
            "`trainer.precision: auto` uses bf16 autocast on CPU only for the cells faster in bf16 here "
            "(`training.BF16_FASTER_ON_CPU`), and on a GPU always.",
            "",
        ]
    )
    Path(__file__).with_name("precision.md").write_text(text)


if __name__ == "__main__":
    main()
