"""Probe CRNN settings on the splice-junction set with a plain PyTorch loop (how splice-crnn's defaults were picked).

Each probe trains seqpipe's CRNN (or, with "rnn": true, a RecurrentModel on one-hot bases) on the train split of
data/prepared/splice, early-stops on val NLL, and prints val and test accuracy / macro AUROC. Choose on val;
test is printed for the record only. One thread, no RC augmentation. Arguments: a JSON object name -> overrides
of the CRNN arguments (plus "epochs", "patience", "bs", "seeds", "lr_schedule": "cosine"), e.g.

    PYTHONPATH=src .venv/bin/seqpipe preprocess --config pipelines/splice/base.yaml
    PYTHONPATH=src .venv/bin/python benchmarks/probes/dna_splice_probes.py \\
        '{"mean_d5_cos60": {"pooling": "mean", "dropout": 0.5, "conv_dropout": 0.3,
                            "lr_schedule": "cosine", "epochs": 60, "patience": 15}}'

Results of the runs behind the README: benchmarks/probes/dna_splice_probes.md.
"""

import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from seqpipe.domains.dna.datamodule import DnaCollate, DNADataModule
from seqpipe.domains.dna.task import classification_metrics, predict_proba
from seqpipe.models.crnn import CRNN

torch.set_num_threads(1)

dm = DNADataModule(
    source="data/raw/splice/splice.csv", labels=None, prepared_dir="data/prepared/splice", max_len=60, rc_augment=0.0
)
dm.prepare_data()
dm.setup()
d = {s: dm.records(s) for s in ("train", "val", "test")}
base = dict(
    conv_channels=[64],
    kernel_size=9,
    time_pool=[2],
    conv_dropout=0.1,
    cell="lstm",
    hidden_size=64,
    bidirectional=True,
    pooling="last",
    dropout=0.2,
    lr=0.003,
    weight_decay=0.01,
    lr_schedule="none",
)


def run(name, seed=0, epochs=60, patience=10, **kw):
    torch.manual_seed(seed)
    np.random.seed(seed)
    kw = dict(kw)
    bs = kw.pop("bs", 64)
    args = {**base, **kw}
    kw["bs"] = bs
    if args.pop("rnn", False):
        from seqpipe.models import RecurrentModel

        for k in ("conv_channels", "kernel_size", "time_pool", "conv_dropout"):
            args.pop(k)
        m = RecurrentModel(dm.spec.to_dict(), one_hot=True, **args, data_info=dm.data_info())
    else:
        m = CRNN(dm.spec.to_dict(), **args, data_info=dm.data_info())
    opt = torch.optim.AdamW(m.parameters(), lr=args["lr"], weight_decay=args["weight_decay"])
    g = torch.Generator().manual_seed(seed)
    dl = torch.utils.data.DataLoader(
        dm.datasets["train"], batch_size=kw.get("bs", 64), shuffle=True, collate_fn=DnaCollate(0.0), generator=g
    )
    import math

    total = epochs * len(dl)
    warm = min(50, total // 10 + 1)
    fac = (
        (
            lambda st: (
                (st + 1) / warm
                if st < warm
                else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, (st - warm) / max(1, total - warm))))
            )
        )
        if args["lr_schedule"] == "cosine"
        else (lambda st: 1.0)
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, fac)
    best, best_state, bad, t0 = 1e9, None, 0, time.time()
    for ep in range(epochs):
        m.train()
        for b in dl:
            loss = F.cross_entropy(m(b["inputs"], b["lengths"])[0], b["targets"])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            opt.step()
            sched.step()
        fwd, _ = predict_proba(m, d["val"][0])
        vl = float(F.nll_loss(torch.log(torch.tensor(fwd) + 1e-9), torch.tensor(d["val"][1])))
        if vl < best:
            best, best_state, bad, bep = vl, {k: v.clone() for k, v in m.state_dict().items()}, 0, ep
        else:
            bad += 1
            if bad >= patience:
                break
    m.load_state_dict(best_state)
    v = classification_metrics(d["val"][1], predict_proba(m, d["val"][0])[0], "val_")
    te = classification_metrics(d["test"][1], predict_proba(m, d["test"][0])[0])
    print(
        f"{name} s{seed}: best ep {bep}/{ep} val_loss {best:.4f} val acc {v['val_accuracy']:.4f} "
        f"auroc {v['val_auroc']:.4f} | test acc {te['test_accuracy']:.4f} auroc {te['test_auroc']:.4f} | "
        f"{time.time() - t0:.0f}s",
        flush=True,
    )


configs = json.loads(sys.argv[1])
for name, kw in configs.items():
    seeds = kw.pop("seeds", [0])
    for s in seeds:
        run(name, seed=s, **kw)
