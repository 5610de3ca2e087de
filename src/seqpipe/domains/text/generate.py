"""Sampling text from a trained next-token model: prompt, length, temperature, top-k, seed."""

from __future__ import annotations

import torch

from seqpipe.domains.text.datamodule import Vocabulary
from seqpipe.errors import SeqpipeError


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    vocab: Vocabulary,
    prompt: str,
    length: int = 300,
    temperature: float = 0.8,
    top_k: int | None = None,
    seed: int = 0,
    allow_unk: bool = False,
) -> str:
    """Feed the prompt through the recurrent core, then sample one token at a time.

    The same seed gives the same text (a private torch.Generator; global RNG untouched).
    """
    if temperature <= 0:
        raise SeqpipeError(f"temperature must be > 0, got {temperature}", where="--temperature")
    if length < 0:
        raise SeqpipeError(f"length must be >= 0, got {length}", where="--length")
    if not prompt:
        prompt = "\n"
    ids = vocab.encode(prompt, strict=not allow_unk)
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    logits, state = model(torch.tensor([ids], device=device))
    out = []
    for _ in range(length):
        scores = logits[0, -1].float().cpu() / temperature
        if top_k:
            kth = torch.topk(scores, min(top_k, scores.numel())).values[-1]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        nxt = int(torch.multinomial(torch.softmax(scores, -1), 1, generator=gen))
        out.append(nxt)
        logits, state = model(torch.tensor([[nxt]], device=device), state=state)
    return prompt + vocab.decode(out)


def generate_from_checkpoint(model: torch.nn.Module, prompt: str, **options) -> str:
    """`seqpipe generate`: the vocabulary from the checkpoint's data_info, then ``generate``."""
    return generate(model, Vocabulary.from_meta({"text": model.hparams.get("data_info") or {}}), prompt, **options)
