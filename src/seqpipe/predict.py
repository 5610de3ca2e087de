"""`seqpipe predict`: a checkpoint plus input files -> predictions, whatever the domain.

The checkpoint's ``data_info["domain"]`` picks ``seqpipe.evaluation.<domain>.predict(model, paths)``,
which reads the files the way that domain's source does and returns one dict a prediction.
"""

from __future__ import annotations

import json
from typing import Any

from seqpipe.errors import SeqpipeError
from seqpipe.evaluation import domain_module
from seqpipe.models.loading import load_model


def predict(ckpt: str, inputs: list[str], echo: bool = False) -> list[dict[str, Any]]:
    """One dict a prediction; ``echo=True`` also prints each as a JSON line (``seqpipe predict`` prints them)."""
    model = load_model(ckpt)
    info = model.hparams.get("data_info") or {}
    domain = info.get("domain")
    mod = domain_module(domain) if domain else None
    if mod is None or not hasattr(mod, "predict"):
        raise SeqpipeError(
            f"no predictor for domain {domain!r}", where=ckpt, fix="use `seqpipe generate` for text language models"
        )
    results = mod.predict(model, inputs)
    if echo:
        for r in results:
            print(json.dumps(r))
    return results
