"""`seqpipe predict` and `seqpipe generate`: a checkpoint plus inputs -> predictions, whatever the domain.

The checkpoint's ``data_info["domain"]`` picks that domain's task ``predict(model, paths)`` (seqpipe.registry),
which reads the files the way that domain's source does and returns one dict a prediction; a domain whose
task names a ``GENERATE`` function (``"module:function"``) samples from its models for `seqpipe generate`.
"""

from __future__ import annotations

import json
import math
import numbers as _numbers
from typing import Any

from seqpipe import registry
from seqpipe.errors import SeqpipeError
from seqpipe.models.loading import load_model


def predict(ckpt: str, inputs: list[str], echo: bool = False) -> list[dict[str, Any]]:
    """One dict a prediction; ``echo=True`` also prints each as a JSON line (``seqpipe predict`` prints them)."""
    model = load_model(ckpt)
    info = model.hparams.get("data_info") or {}
    domain = info.get("domain")
    mod = registry.task(domain) if domain else None
    if mod is None or not hasattr(mod, "predict"):
        raise SeqpipeError(
            f"no predictor for domain {domain!r}", where=ckpt, fix="use `seqpipe generate` for text language models"
        )
    results = mod.predict(model, inputs)
    for i, r in enumerate(results):
        _refuse_non_finite(r, r.get("file") or (inputs[i] if len(results) == len(inputs) else ", ".join(inputs)))
    if echo:
        for r in results:
            print(json.dumps(r, allow_nan=False))
    return results


def _refuse_non_finite(result: Any, where: str) -> None:
    """A NaN/inf prediction is refused naming its input: never printed (it would not even be standard JSON)."""

    def numbers(x: Any):
        if isinstance(x, dict):
            for v in x.values():
                yield from numbers(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                yield from numbers(v)
        elif isinstance(x, _numbers.Real):  # Python and NumPy floats
            yield x

    if not all(math.isfinite(v) for v in numbers(result)):
        raise SeqpipeError(
            "the prediction holds NaN/inf values: the input (or the model) holds non-finite or extreme values",
            where=where,
            fix="check the input file's values; `seqpipe verify` the checkpoint",
        )


def generate(ckpt: str, prompt: str, **options: Any) -> str:
    """Sample from a generative checkpoint (a next-token model): its domain's ``GENERATE`` function."""
    import importlib

    model = load_model(ckpt)
    domain = (model.hparams.get("data_info") or {}).get("domain")
    target = getattr(registry.task(domain), "GENERATE", None) if domain else None
    if target is None:
        raise SeqpipeError(
            f"checkpoint is not a generative model (domain={domain!r})",
            where=ckpt,
            fix="pass a next-token language model's checkpoint (e.g. models/text-lstm/best.ckpt)",
        )
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)(model, prompt, **options)
