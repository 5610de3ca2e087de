"""Dates of a price file: one format a file, given or detected once, and never a guess at day/month order.

Separate from the row checks because date formats are their own hard problem (ISO, numeric with
either order, pandas-guessable text) and the rules for it are strict: an ambiguous file is an
error naming the ``date_format`` to set.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from seqpipe.domains.stocks.source.schema import _where
from seqpipe.errors import SeqpipeError

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")
_NUMERIC = r"^(\d{1,2})([/.\-])(\d{1,2})([/.\-])(\d{4}|\d{2})$"


def parse_dates(path: Path, text: pd.Series, lines: np.ndarray, date_format: str | None) -> tuple[pd.Series, str]:
    """Every date of a file with one format: ``date_format``, or the one format detected for the file.

    Returns (datetime64 series, the format used). Ambiguous numeric day/month orders are an error.
    """
    text = text.reset_index(drop=True)
    fix_fmt = "set data.date_format to the file's pattern, e.g. '%d/%m/%Y' (day first) or '%m/%d/%Y' (month first)"
    empty = (text == "").to_numpy()
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise SeqpipeError(
            "missing or unreadable date ''",
            where=_where(path, lines[i], "date"),
            fix="give every row a date like 2011-03-01, or remove the row",
        )
    if not len(text):
        return pd.Series([], dtype="datetime64[ns]"), date_format or "none"
    if date_format is None:
        date_format = _detect_format(path, text, lines, fix_fmt)
    try:
        if date_format == "ISO8601":
            parsed = pd.to_datetime(text, errors="coerce", format="ISO8601")
        else:
            parsed = pd.to_datetime(text, errors="coerce", format=date_format)
    except (ValueError, TypeError) as e:
        raise SeqpipeError(
            f"cannot parse dates with date_format {date_format!r}: {e}",
            where=path,
            fix="use a strptime pattern such as '%Y-%m-%d' or '%d/%m/%Y'",
        ) from e
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SeqpipeError(
            f"missing or unreadable date {text.iloc[i]!r}: not in the file's date format {date_format!r} "
            f"({int(bad.sum())} such rows)",
            where=_where(path, lines[i], "date"),
            fix="fix the cell (one date format per file), or set data.date_format to the file's pattern",
        )
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return parsed, date_format


def _detect_format(path: Path, text: pd.Series, lines: np.ndarray, fix_fmt: str) -> str:
    if text.str.match(_ISO).all():
        return "ISO8601"
    m = text.str.extract(_NUMERIC)
    numeric = m[0].notna().to_numpy()
    if numeric.all():
        seps = set(m[1]) | set(m[3])
        if len(seps) != 1 or len(set(m[4].str.len())) != 1:
            raise SeqpipeError(
                f"dates mix formats ({text.iloc[0]!r} ... separators {sorted(seps)})",
                where=path,
                fix="use one date format per file; " + fix_fmt,
            )
        sep, year = seps.pop(), "%Y" if len(m[4].iloc[0]) == 4 else "%y"
        a, b = m[0].astype(int).to_numpy(), m[2].astype(int).to_numpy()
        day_first, month_first = np.flatnonzero(a > 12), np.flatnonzero(b > 12)
        if len(day_first) and len(month_first):
            i, j = int(day_first[0]), int(month_first[0])
            raise SeqpipeError(
                f"dates mix day-first ({text.iloc[i]!r}, line {lines[i]}) and month-first "
                f"({text.iloc[j]!r}, line {lines[j]}) order",
                where=path,
                fix="use one date format per file; " + fix_fmt,
            )
        if len(day_first):
            i = int(day_first[0])
            raise SeqpipeError(
                f"ambiguous day/month order: {text.iloc[i]!r} (line {lines[i]}) has a day above 12 in "
                f"the first field: the file looks day-first, and seqpipe does not guess a date order",
                where=path,
                fix=f"set data.date_format: '%d{sep}%m{sep}{year}' (or convert the dates to 2011-03-01)",
            )
        if len(month_first):
            return f"%m{sep}%d{sep}{year}"
        raise SeqpipeError(
            f"ambiguous day/month order: no date has a field above 12 ({text.iloc[0]!r} ... "
            f"{text.iloc[-1]!r}), so day-first and month-first both read",
            where=path,
            fix=fix_fmt,
        )
    if numeric.any():
        i = int(np.flatnonzero(numeric)[0])
        j = int(np.flatnonzero(~numeric)[0])
        raise SeqpipeError(
            f"dates mix formats ({text.iloc[i]!r} on line {lines[i]}, {text.iloc[j]!r} on line {lines[j]})",
            where=path,
            fix="use one date format per file, or set data.date_format",
        )
    from pandas.tseries.api import guess_datetime_format

    fmt = guess_datetime_format(text.iloc[0])
    if fmt is None:
        raise SeqpipeError(
            f"missing or unreadable date {text.iloc[0]!r}: cannot tell its format",
            where=_where(path, lines[0], "date"),
            fix="give dates like 2011-03-01, or set data.date_format to the file's strptime pattern",
        )
    return fmt
