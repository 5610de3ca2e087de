"""One ticker's rows checked and repaired by ``Rules``: numbers, non-finite values, prices, order,
duplicated dates, gaps -- each repair counted, each refusal naming file, line and column.

Separate from reading the file (``read``) so that the rules apply the same to a file per ticker and
to each block of a long table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from seqpipe.domains.stocks.source.schema import PRICES, Rules, TickerSeries, _where
from seqpipe.errors import SeqpipeError


def _validate(path: Path, ticker: str, g: pd.DataFrame, rules: Rules) -> TickerSeries:
    repairs: dict[str, int] = {}
    lines = g["line"].to_numpy()
    dates = g["parsed_date"]
    numeric = [c for c in ("open", "high", "low", "close", "adj_close", "volume") if c in g]
    values = {}
    nonfinite = np.zeros(len(g), dtype=bool)
    first_nonfinite = None
    for c in numeric:
        text = g[c]
        num = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
        missing_text = text.str.lower().isin(
            ["", "nan", "na", "n/a", "null", "none", "-", "inf", "-inf", "+inf", "infinity"]
        )
        garbage = np.isnan(num) & ~missing_text.to_numpy()
        if garbage.any():
            i = int(np.flatnonzero(garbage)[0])
            raise SeqpipeError(
                f"not a number: {text.iloc[i]!r} (ticker {ticker})",
                where=_where(path, lines[i], c),
                fix="fix the cell or remove the row",
            )
        nf = ~np.isfinite(num)
        if nf.any():
            i = int(np.flatnonzero(nf)[0])
            if first_nonfinite is None or lines[i] < first_nonfinite[0]:
                first_nonfinite = (lines[i], c, text.iloc[i])
        nonfinite |= nf
        values[c] = num
    if nonfinite.any():
        if rules.nonfinite == "error":
            line, c, txt = first_nonfinite
            raise SeqpipeError(
                f"missing or non-finite value {txt!r} (ticker {ticker}; {int(nonfinite.sum())} such rows)",
                where=_where(path, line, c),
                fix="fix the rows, or set data.nonfinite: drop to drop them",
            )
        repairs["nonfinite_rows_dropped"] = int(nonfinite.sum())
    keep = ~nonfinite
    dates = dates.to_numpy()[keep].astype("datetime64[D]")
    lines = lines[keep]
    values = {c: v[keep] for c, v in values.items()}
    for c in PRICES:
        if c in values and (values[c] <= 0).any():
            i = int(np.flatnonzero(values[c] <= 0)[0])
            raise SeqpipeError(
                f"non-positive price {values[c][i]:g} (ticker {ticker})",
                where=_where(path, lines[i], c),
                fix="prices must be > 0 (log returns); fix or remove the row",
            )
    if (values["volume"] < 0).any():
        i = int(np.flatnonzero(values["volume"] < 0)[0])
        raise SeqpipeError(
            f"negative volume {values['volume'][i]:g} (ticker {ticker})",
            where=_where(path, lines[i], "volume"),
            fix="fix or remove the row",
        )
    back = np.flatnonzero(np.diff(dates) < np.timedelta64(0, "D"))
    if len(back):
        i = int(back[0]) + 1
        if rules.unsorted == "error":
            raise SeqpipeError(
                f"rows not sorted by date: {dates[i]} comes after {dates[i - 1]} (ticker {ticker})",
                where=_where(path, lines[i], "date"),
                fix="sort the file by date, or set data.unsorted: sort",
            )
        if len(dates) > 2 and len(back) == len(dates) - 1:  # strictly newest first: a common export layout
            repairs["newest_first_reversed"] = 1
        elif len(back) > rules.max_unsorted_rows:
            raise SeqpipeError(
                f"{len(back)} rows out of date order (first: {dates[i]} after {dates[i - 1]}; ticker "
                f"{ticker}); sorting repairs at most max_unsorted_rows={rules.max_unsorted_rows}, not a "
                f"wholesale reordering",
                where=_where(path, lines[i], "date"),
                fix="check the dates' day/month order (set data.date_format, e.g. '%d/%m/%Y'), or sort "
                "the file by date yourself",
            )
        else:
            repairs["unsorted_rows_sorted"] = int(len(back))
        order = np.argsort(dates, kind="stable")
        dates, lines = dates[order], lines[order]
        values = {c: v[order] for c, v in values.items()}
    dup = np.flatnonzero(np.diff(dates) == np.timedelta64(0, "D"))
    if len(dup):
        if rules.duplicates == "error":
            i = int(dup[0])
            raise SeqpipeError(
                f"duplicated date {dates[i]} on lines {lines[i]} and {lines[i + 1]} (ticker {ticker})",
                where=_where(path, lines[i + 1], "date"),
                fix="remove the duplicate row, or set data.duplicates: keep_last",
            )
        keep = np.ones(len(dates), dtype=bool)
        keep[dup] = False  # of equal dates (stable-sorted), the later line wins
        repairs["duplicate_rows_dropped"] = int(len(dup))
        dates, lines = dates[keep], lines[keep]
        values = {c: v[keep] for c, v in values.items()}
    gap = np.flatnonzero(np.diff(dates) > np.timedelta64(rules.max_gap_days, "D"))
    if len(gap):
        if rules.gaps == "error":
            i = int(gap[0])
            raise SeqpipeError(
                f"missing dates: {int((dates[i + 1] - dates[i]).astype(int))} days between {dates[i]} and "
                f"{dates[i + 1]} (more than max_gap_days={rules.max_gap_days}; ticker {ticker})",
                where=_where(path, lines[i + 1], "date"),
                fix="supply the missing rows, or set data.gaps: keep to accept the gap (no day is invented)",
            )
        repairs["gaps_kept"] = int(len(gap))
    return TickerSeries(
        ticker=ticker,
        file=str(path),
        dates=dates,
        open=values["open"],
        high=values["high"],
        low=values["low"],
        close=values["close"],
        adj_close=values.get("adj_close"),
        volume=values["volume"],
        line=lines,
        repairs=repairs,
    )
