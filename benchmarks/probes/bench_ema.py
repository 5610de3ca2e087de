"""The cost of one update of the weights' moving average (fit.ema_decay) -> benchmarks/probes/ema.md.

    .venv/bin/python benchmarks/probes/bench_ema.py

The text LSTM recipe's parameters (built from pipelines/text/lstm.yaml on the Bible's vocabulary size: 3.5 M, most
of them the n-gram tables), one thread: torch's fused multi-tensor EMA (``get_ema_multi_avg_fn``, one lerp over all
tensors: what seqpipe.callbacks.WeightEMA uses) against the per-tensor ``get_ema_avg_fn`` that Lightning's
EMAWeightAveraging passes, alternating, each timed over the same number of updates.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_avg_fn, get_ema_multi_avg_fn

from seqpipe.config import load_config
from seqpipe.data.spec import DataSpec
from seqpipe.models import RecurrentModel

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--updates", type=int, default=200)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", default=str(ROOT / "benchmarks/probes/ema.md"))
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    args = load_config(ROOT / "pipelines/text/lstm.yaml")["model"]["init_args"]
    spec = DataSpec(input="tokens", target="next_token", vocab_size=43, causal=True).to_dict()
    model = RecurrentModel(spec=spec, **args)
    n = sum(q.numel() for q in model.parameters())
    averages = {
        "fused (get_ema_multi_avg_fn, seqpipe's WeightEMA)": AveragedModel(
            model, multi_avg_fn=get_ema_multi_avg_fn(0.998), use_buffers=False
        ),
        "per tensor (get_ema_avg_fn, Lightning's EMAWeightAveraging)": AveragedModel(
            model, avg_fn=get_ema_avg_fn(0.998), use_buffers=False
        ),
    }
    times: dict[str, list[float]] = {k: [] for k in averages}
    for _ in range(a.rounds):
        for name, avg in averages.items():
            avg.update_parameters(model)  # the first update copies; time the averaging ones
            t = time.perf_counter()
            for _ in range(a.updates):
                avg.update_parameters(model)
            times[name].append(1000 * (time.perf_counter() - t) / a.updates)
    rows = [f"| {k} | {statistics.median(v):.2f} | {min(v):.2f}-{max(v):.2f} |" for k, v in times.items()]
    fused, loop = (statistics.median(v) for v in times.values())
    text = "\n".join(
        [
            "# Moving average of the weights: one update's cost",
            "",
            "`python benchmarks/probes/bench_ema.py` "
            f"({a.rounds} rounds of {a.updates} updates, alternating; one thread; "
            f"the text LSTM recipe's {n / 1e6:.2f} M parameters).",
            "",
            "| update | ms (median) | rounds |",
            "|---|---|---|",
            *rows,
            "",
            f"The per-tensor update costs {loop / fused:.1f}x the fused one. The recipe updates every 4th step "
            f"(`fit.ema_every_n_steps: 4`), so the fused average costs ~{fused / 4:.2f} ms a training step.",
            "",
        ]
    )
    Path(a.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
