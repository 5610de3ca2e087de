"""Choosing a baseline's hyperparameter on the validation split: fit each candidate on train, score it on
val, keep the best. The test split is never looked at."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

P = TypeVar("P")  # a candidate: a C, a dict of settings
M = TypeVar("M")  # a fitted model


@dataclass
class Selection(Generic[P, M]):
    """The winning candidate, its fitted model, and every candidate's val score in the order tried."""

    params: P
    model: M
    score: Any
    scores: list[tuple[P, Any]] = field(default_factory=list)


def pick_on_val(
    candidates: Iterable[P],
    fit: Callable[[P], M],
    score: Callable[[P, M], Any],
    *,
    higher_is_better: bool = True,
    key: Callable[[Any], Any] | None = None,
) -> Selection[P, M]:
    """Fit and score every candidate in order; the best ``key(score)`` wins, the first of equals on a tie.

    ``key`` turns a score into what is compared (e.g. (AUROC, accuracy) from a dict of metrics); default
    the score itself.
    """
    key = key or (lambda s: s)
    best: Selection[P, M] | None = None
    tried: list[tuple[P, Any]] = []
    for params in candidates:
        model = fit(params)
        s = score(params, model)
        tried.append((params, s))
        if best is None or (key(s) > key(best.score) if higher_is_better else key(s) < key(best.score)):
            best = Selection(params, model, s)
    if best is None:
        raise ValueError("no candidate to choose from")
    best.scores = tried
    return best
