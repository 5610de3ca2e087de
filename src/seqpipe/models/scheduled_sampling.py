"""Scheduled sampling (Bengio et al. 2015): how often a decoder in training is fed the true previous
output, by optimizer step, and the reproducible coin flips that pick which samples are.

Separate from Seq2Seq because the schedule is a pure function of the step (tested on its own)
and the coin flips' seeding is what makes a run and its resumed continuation agree.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from seqpipe.errors import SeqpipeError

DECAYS = ("none", "linear", "exponential", "inverse_sigmoid")


def teacher_forcing_ratio(step: int, start: float, minimum: float, decay: str, decay_steps: int) -> float:
    """Probability of feeding the true previous output at optimizer step ``step``."""
    if decay == "none" or decay_steps <= 0:
        return start
    x = step / decay_steps
    if decay == "linear":
        p = start - (start - minimum) * min(1.0, x)
    elif decay == "exponential":  # start * k^step with k chosen so p reaches `minimum` at decay_steps
        p = start * (max(minimum, 1e-3) / start) ** x
    elif decay == "inverse_sigmoid":  # k / (k + exp(step / k)), centred at decay_steps / 2
        p = start / (1.0 + math.exp(10.0 * (x - 0.5)))
    else:
        raise SeqpipeError(
            f"unknown sampling decay '{decay}'", where="model.sampling_decay", fix=f"use one of {DECAYS}"
        )
    return max(minimum, p)


def step_generator(step: int) -> torch.Generator:
    """Scheduled-sampling coin flips of one training step: seeded by (run seed, step), so a run and
    its resumed continuation flip the same coins."""
    seed = np.random.SeedSequence([torch.initial_seed() % 2**63, int(step)]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(seed))
