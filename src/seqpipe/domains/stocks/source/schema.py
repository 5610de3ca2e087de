"""The OHLCV schema: the columns a price file must hold, the repair ``Rules``, and the ``TickerSeries``
that reading returns.

Separate because the reader, the date parser and the row checks all speak it, and the datamodule
and the evaluation consume ``TickerSeries`` without needing the reader's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqpipe.errors import SeqpipeError

REQUIRED = ("date", "open", "high", "low", "close", "volume")
PRICES = ("open", "high", "low", "close", "adj_close")
DISPLAY = {
    "date": "Date",
    "open": "Open",
    "high": "High",
    "low": "Low",
    "close": "Close",
    "adj_close": "Adj Close",
    "volume": "Volume",
    "ticker": "Ticker",
}


@dataclass(frozen=True)
class Rules:
    """How the reader treats repairable problems (see the module docstring)."""

    nonfinite: str = "drop"  # drop | error
    unsorted: str = "sort"  # sort | error
    duplicates: str = "error"  # error | keep_last
    gaps: str = "error"  # error | keep
    max_gap_days: int = 10
    date_format: str | None = None  # strptime pattern, e.g. "%d/%m/%Y"; None = detect once per file
    max_unsorted_rows: int = 5  # unsorted="sort" repairs at most this many rows out of order

    def __post_init__(self) -> None:
        if self.date_format is not None and (not isinstance(self.date_format, str) or "%" not in self.date_format):
            raise SeqpipeError(
                f"date_format {self.date_format!r} is not a strptime pattern",
                where="data.date_format",
                fix="use a pattern such as '%Y-%m-%d' or '%d/%m/%Y', or leave it unset to detect it",
            )
        if int(self.max_unsorted_rows) < 0:
            raise SeqpipeError(
                f"max_unsorted_rows must be >= 0, got {self.max_unsorted_rows}", where="data.max_unsorted_rows"
            )
        for name, allowed in (
            ("nonfinite", ("drop", "error")),
            ("unsorted", ("sort", "error")),
            ("duplicates", ("error", "keep_last")),
            ("gaps", ("error", "keep")),
        ):
            if getattr(self, name) not in allowed:
                raise SeqpipeError(
                    f"unknown rule {name}={getattr(self, name)!r}",
                    where=f"data.{name}",
                    fix=f"use one of {list(allowed)}",
                )


@dataclass
class TickerSeries:
    """One ticker's validated daily rows, sorted by date; ``line`` is each row's file line."""

    ticker: str
    file: str
    dates: np.ndarray  # datetime64[D]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    adj_close: np.ndarray | None
    volume: np.ndarray
    line: np.ndarray
    repairs: dict[str, int] = field(default_factory=dict)
    date_format: str | None = None  # the format the file's dates were read with

    def __len__(self) -> int:
        return len(self.dates)

    def price(self, column: str = "auto") -> tuple[np.ndarray, str]:
        """The price that returns are computed from: Adj Close when present (``auto``), or Close."""
        if column == "auto":
            column = "adj_close" if self.adj_close is not None else "close"
        if column == "adj_close":
            if self.adj_close is None:
                raise SeqpipeError(
                    "no 'Adj Close' column",
                    where=self.file,
                    fix="set data.price_column: close (or auto), or add the column",
                )
            return self.adj_close, "adj_close"
        if column == "close":
            return self.close, "close"
        raise SeqpipeError(
            f"unknown price_column {column!r}", where="data.price_column", fix="use auto, adj_close or close"
        )


def _where(path: Path, line: int, col: str) -> str:
    return f"{path}, line {line}, column {DISPLAY[col]}"
