"""Progress bars for the long steps outside training (synthesis, preprocessing, baselines, evaluation).

tqdm (a Lightning dependency, so in the core install) on stderr, shown only on a terminal: DVC stage logs
and CI stay free of carriage-return noise. ``SEQPIPE_PROGRESS=1`` forces bars on, ``0`` off.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def enabled() -> bool | None:
    """tqdm's ``disable`` value: None = only on a terminal, unless SEQPIPE_PROGRESS says otherwise."""
    flag = os.environ.get("SEQPIPE_PROGRESS", "").strip()
    return None if flag == "" else flag == "0"


def progress(iterable: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """``iterable`` with a progress bar named ``desc`` (nothing else changes: same items, same order)."""
    from tqdm.auto import tqdm

    yield from tqdm(
        iterable, desc=f"[seqpipe] {desc}", total=total, unit=unit, disable=enabled(), leave=False, dynamic_ncols=True
    )
