"""Stock prices: OHLCV CSV files -> validated per-ticker daily series (and the embedded default).

Layout read (the common export): ``Date, Open, High, Low, Close, Adj Close, Volume``, column
names case-insensitive (``Adj Close`` / ``adj_close`` / ``AdjClose`` all match). Either one file
per ticker (the ticker is the file name's stem) or one long table with a ``Ticker`` (or
``Symbol``) column. Dates are parsed and kept as given: trading-day gaps (weekends, holidays) are
not filled, no day is invented.

Bad input, and what happens (``Rules``; every repair is counted in the preprocess log and in
meta.json under ``repairs``; nothing is changed silently):

- missing required column (Date, Open, High, Low, Close, Volume): always an error naming the file
  and the column.
- dates: one format per file. ``date_format`` (a strptime pattern such as ``%d/%m/%Y``) reads every
  date with that pattern; unset (default), the format is detected once per file: ISO ``2011-03-01``
  (a time part allowed), ``M/D/YYYY`` when some second field is above 12, or a format pandas can
  guess from the first date (``04-Jan-1999``, ``19990104``, ``Jan 4, 1999``) applied to every row.
  Numeric dates whose day/month order the file cannot prove -- a day above 12 in the first field
  (``25/01/1999``, day-first), or no field above 12 anywhere -- are an error naming the file, a line
  and the ``date_format`` to set: a guess would silently scramble the series.
- a date cell that is empty, not a date, or not in the file's format: always an error naming file,
  line and column.
- a price/volume cell that is text, not a number: always an error naming file, line and column.
- NaN / inf / empty price or volume: ``nonfinite="drop"`` (default) drops the row (counted);
  ``"error"`` stops naming file, line and column.
- non-positive price (Open/High/Low/Close/Adj Close <= 0) or negative volume: always an error
  naming file, line and column (log returns are undefined; no repair guesses a price).
- unsorted rows: ``unsorted="sort"`` (default) sorts by date when at most ``max_unsorted_rows``
  (5) rows are out of order (a row dated before the row above it; counted), and refuses wholesale
  reordering (usually a wrong date format) naming the count, the first such line and the fix; a file
  in exactly reverse date order (newest first, a common export) is reversed (counted as
  ``newest_first_reversed``). ``"error"`` stops naming the first line out of order.
- duplicated dates: ``duplicates="error"`` (default) stops naming both lines; ``"keep_last"``
  keeps the later line (dropped rows counted).
- a gap of more than ``max_gap_days`` calendar days between consecutive rows ("missing dates"):
  ``gaps="error"`` (default) stops naming the two lines; ``"keep"`` keeps the series as is and
  counts the gaps (the return over a gap spans it; no day is invented).
- blank lines: dropped (counted).

Line numbers are 1-based file lines (the header is line 1).
"""

from __future__ import annotations

import argparse
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from seqpipe.errors import SeqpipeError, exit_code
from seqpipe.sources.output import GeneratedFolder

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
CSV_SUFFIXES = (".csv", ".csv.gz", ".txt")


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


def _norm(name: str) -> str:
    key = re.sub(r"[^a-z]", "", str(name).lower())
    return {"adjclose": "adj_close", "adjustedclose": "adj_close", "symbol": "ticker", "timestamp": "date"}.get(
        key, key
    )


def resolve_files(source: str | Path | Sequence[str | Path]) -> list[Path]:
    """A CSV file, a folder of CSV files (sorted), or a list of those."""
    items = [source] if isinstance(source, (str, Path)) else list(source)
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if not p.exists():
            raise SeqpipeError(
                "stock source not found",
                where=p,
                fix="point data.source at a CSV file or a folder of CSVs (`dvc repro stocks_raw` exports the default)",
            )
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.name.lower().endswith(CSV_SUFFIXES))
            if not found:
                raise SeqpipeError("folder holds no CSV files", where=p, fix="add one OHLCV .csv file per ticker")
            files.extend(found)
        else:
            files.append(p)
    return files


def read_ohlcv(source: str | Path | Sequence[str | Path], rules: Rules = Rules()) -> list[TickerSeries]:
    """Every ticker in the source, validated and repaired by ``rules``, in a fixed order."""
    out: list[TickerSeries] = []
    seen: dict[str, str] = {}
    for path in resolve_files(source):
        for s in read_csv(path, rules):
            if s.ticker in seen:
                raise SeqpipeError(
                    f"ticker {s.ticker!r} appears in two places ({seen[s.ticker]})",
                    where=path,
                    fix="give each ticker one file, or one block of rows in a long table",
                )
            seen[s.ticker] = str(path)
            out.append(s)
    return out


def read_csv(path: str | Path, rules: Rules = Rules()) -> list[TickerSeries]:
    """One CSV -> one TickerSeries (file per ticker) or several (long table with a ticker column)."""
    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        detail = " ".join(str(e).split())  # pandas' messages end in a newline: keep the error one line
        raise SeqpipeError(
            f"cannot read as CSV: {detail}", where=path, fix="export the prices as comma-separated text"
        ) from e
    except (EOFError, OSError, zlib.error) as e:  # a truncated or corrupt .csv.gz
        raise SeqpipeError(
            f"cannot read the file ({type(e).__name__}: {e}); a truncated or corrupt .gz?",
            where=path,
            fix="re-download or re-compress the file",
        ) from e
    cols: dict[str, str] = {}
    for c in raw.columns:
        cols.setdefault(_norm(c), c)
    missing = [DISPLAY[c] for c in REQUIRED if c not in cols]
    if missing:
        raise SeqpipeError(
            f"missing column(s) {missing} (found {list(raw.columns)})",
            where=f"{path}, column {missing[0]}",
            fix="export Date, Open, High, Low, Close, (Adj Close,) Volume",
        )
    frame = pd.DataFrame({k: raw[v].str.strip() for k, v in cols.items() if k in (*REQUIRED, "adj_close", "ticker")})
    frame["line"] = np.arange(len(frame)) + 2
    blank = (frame.drop(columns="line") == "").all(axis=1)
    frame = frame[~blank].reset_index(drop=True)
    frame["parsed_date"], date_format = parse_dates(path, frame["date"], frame["line"].to_numpy(), rules.date_format)
    if "ticker" in frame:
        empty = frame["ticker"] == ""
        if empty.any():
            raise SeqpipeError(
                "empty ticker",
                where=f"{path}, line {int(frame['line'][empty].iloc[0])}, column Ticker",
                fix="fill in the ticker symbol",
            )
        groups = [(str(t), g) for t, g in frame.groupby("ticker", sort=True)]
    else:
        groups = [(path.name.split(".")[0], frame)]
    series = [_validate(path, ticker, g.reset_index(drop=True), rules) for ticker, g in groups]
    if blank.any() and series:
        series[0].repairs["blank_lines_dropped"] = int(blank.sum())
    for x in series:
        x.date_format = date_format
    return series


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


def _where(path: Path, line: int, col: str) -> str:
    return f"{path}, line {line}, column {DISPLAY[col]}"


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


# -- the embedded default ----------------------------------------------------------------------
EMBEDDED = ("SP500", "NASDAQ", "AAPL", "GOOG", "IBM", "MSFT")


def embedded_frames() -> dict[str, pd.DataFrame]:
    """Daily OHLCV that pip packages ship: S&P 500 and NASDAQ (arch, 1999-2018), AAPL/GOOG/IBM/MSFT
    (bokeh_sampledata, 2000-2013; GOOG from 2004). FB (9 months) is left out: shorter than a split."""
    try:
        from arch.data import nasdaq, sp500
        from bokeh_sampledata.stocks import data as bokeh
    except ImportError as e:
        raise SeqpipeError(
            f"the default stock data needs the 'arch' and 'bokeh_sampledata' packages ({e})",
            where="data/raw/stocks",
            fix="pip install 'seqpipe[stocks]' (it installs both)",
        ) from e
    cols = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]
    frames = {}
    for name, mod in (("SP500", sp500), ("NASDAQ", nasdaq)):
        d = mod.load().reset_index()
        frames[name] = d.rename(columns={d.columns[0]: "Date"})[cols]
    rename = {
        "date": "Date",
        "open": "Open",
        "high": "High",
        "low": "Low",
        "close": "Close",
        "adj_close": "Adj Close",
        "volume": "Volume",
    }
    for ticker in ("AAPL", "GOOG", "IBM", "MSFT"):
        frames[ticker] = bokeh[bokeh["ticker"] == ticker].rename(columns=rename)[cols].reset_index(drop=True)
    return frames


def export_embedded(out_dir: str | Path) -> list[Path]:
    """Write the embedded default as one CSV a ticker (the layout any user's export has); the folder is
    replaced whole, and only if a seqpipe generator wrote it (see sources/output.py)."""
    with GeneratedFolder(
        out_dir, "seqpipe.sources.stocks", data="the embedded default (bokeh_sampledata, arch)"
    ) as folder:
        names = []
        for name, frame in embedded_frames().items():
            frame = frame.copy()
            frame["Date"] = pd.to_datetime(frame["Date"]).dt.strftime("%Y-%m-%d")
            frame.to_csv(folder.path / f"{name}.csv", index=False, float_format="%.10g")
            names.append(f"{name}.csv")
    return [folder.out / n for n in names]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="export the embedded default stock data to CSV files")
    p.add_argument("out_dir", nargs="?", default="data/raw/stocks")
    args = p.parse_args(argv)
    for path in export_embedded(args.out_dir):
        print(f"[seqpipe] wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(exit_code(main))
