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
- a date cell that is empty or not a date: always an error naming file, line and column.
- a price/volume cell that is text, not a number: always an error naming file, line and column.
- NaN / inf / empty price or volume: ``nonfinite="drop"`` (default) drops the row (counted);
  ``"error"`` stops naming file, line and column.
- non-positive price (Open/High/Low/Close/Adj Close <= 0) or negative volume: always an error
  naming file, line and column (log returns are undefined; no repair guesses a price).
- unsorted rows: ``unsorted="sort"`` (default) sorts by date (rows out of order counted);
  ``"error"`` stops naming the first line out of order.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from seqpipe.errors import SeqpipeError

REQUIRED = ("date", "open", "high", "low", "close", "volume")
PRICES = ("open", "high", "low", "close", "adj_close")
DISPLAY = {"date": "Date", "open": "Open", "high": "High", "low": "Low", "close": "Close",
           "adj_close": "Adj Close", "volume": "Volume", "ticker": "Ticker"}
CSV_SUFFIXES = (".csv", ".csv.gz", ".txt")


@dataclass(frozen=True)
class Rules:
    """How the reader treats repairable problems (see the module docstring)."""

    nonfinite: str = "drop"     # drop | error
    unsorted: str = "sort"      # sort | error
    duplicates: str = "error"   # error | keep_last
    gaps: str = "error"         # error | keep
    max_gap_days: int = 10

    def __post_init__(self) -> None:
        for name, allowed in (("nonfinite", ("drop", "error")), ("unsorted", ("sort", "error")),
                              ("duplicates", ("error", "keep_last")), ("gaps", ("error", "keep"))):
            if getattr(self, name) not in allowed:
                raise SeqpipeError(f"unknown rule {name}={getattr(self, name)!r}", where=f"data.{name}",
                                   fix=f"use one of {list(allowed)}")


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

    def __len__(self) -> int:
        return len(self.dates)

    def price(self, column: str = "auto") -> tuple[np.ndarray, str]:
        """The price that returns are computed from: Adj Close when present (``auto``), or Close."""
        if column == "auto":
            column = "adj_close" if self.adj_close is not None else "close"
        if column == "adj_close":
            if self.adj_close is None:
                raise SeqpipeError("no 'Adj Close' column", where=self.file,
                                   fix="set data.price_column: close (or auto), or add the column")
            return self.adj_close, "adj_close"
        if column == "close":
            return self.close, "close"
        raise SeqpipeError(f"unknown price_column {column!r}", where="data.price_column", fix="use auto, adj_close or close")


def _norm(name: str) -> str:
    key = re.sub(r"[^a-z]", "", str(name).lower())
    return {"adjclose": "adj_close", "adjustedclose": "adj_close", "symbol": "ticker", "timestamp": "date"}.get(key, key)


def resolve_files(source: str | Path | Sequence[str | Path]) -> list[Path]:
    """A CSV file, a folder of CSV files (sorted), or a list of those."""
    items = [source] if isinstance(source, (str, Path)) else list(source)
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if not p.exists():
            raise SeqpipeError("stock source not found", where=p,
                               fix="point data.source at a CSV file or a folder of CSVs (`dvc repro stocks_raw` exports the default)")
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
                raise SeqpipeError(f"ticker {s.ticker!r} appears in two places ({seen[s.ticker]})", where=path,
                                   fix="give each ticker one file, or one block of rows in a long table")
            seen[s.ticker] = str(path)
            out.append(s)
    return out


def read_csv(path: str | Path, rules: Rules = Rules()) -> list[TickerSeries]:
    """One CSV -> one TickerSeries (file per ticker) or several (long table with a ticker column)."""
    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise SeqpipeError(f"cannot read as CSV: {e}", where=path, fix="export the prices as comma-separated text") from e
    cols: dict[str, str] = {}
    for c in raw.columns:
        cols.setdefault(_norm(c), c)
    missing = [DISPLAY[c] for c in REQUIRED if c not in cols]
    if missing:
        raise SeqpipeError(f"missing column(s) {missing} (found {list(raw.columns)})", where=f"{path}, column {missing[0]}",
                           fix="export Date, Open, High, Low, Close, (Adj Close,) Volume")
    frame = pd.DataFrame({k: raw[v].str.strip() for k, v in cols.items() if k in (*REQUIRED, "adj_close", "ticker")})
    frame["line"] = np.arange(len(frame)) + 2
    blank = (frame.drop(columns="line") == "").all(axis=1)
    frame = frame[~blank]
    if "ticker" in frame:
        empty = frame["ticker"] == ""
        if empty.any():
            raise SeqpipeError("empty ticker", where=f"{path}, line {int(frame['line'][empty].iloc[0])}, column Ticker",
                               fix="fill in the ticker symbol")
        groups = [(str(t), g) for t, g in frame.groupby("ticker", sort=True)]
    else:
        groups = [(path.name.split(".")[0], frame)]
    series = [_validate(path, ticker, g.reset_index(drop=True), rules) for ticker, g in groups]
    if blank.any() and series:
        series[0].repairs["blank_lines_dropped"] = int(blank.sum())
    return series


def _where(path: Path, line: int, col: str) -> str:
    return f"{path}, line {line}, column {DISPLAY[col]}"


def _validate(path: Path, ticker: str, g: pd.DataFrame, rules: Rules) -> TickerSeries:
    repairs: dict[str, int] = {}
    lines = g["line"].to_numpy()
    dates = pd.to_datetime(g["date"], errors="coerce", format="mixed")
    bad = dates.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SeqpipeError(f"missing or unreadable date {g['date'].iloc[i]!r} (ticker {ticker})",
                           where=_where(path, lines[i], "date"), fix="give every row a date like 2011-03-01, or remove the row")
    numeric = [c for c in ("open", "high", "low", "close", "adj_close", "volume") if c in g]
    values = {}
    nonfinite = np.zeros(len(g), dtype=bool)
    first_nonfinite = None
    for c in numeric:
        text = g[c]
        num = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
        missing_text = text.str.lower().isin(["", "nan", "na", "n/a", "null", "none", "-", "inf", "-inf", "+inf", "infinity"])
        garbage = np.isnan(num) & ~missing_text.to_numpy()
        if garbage.any():
            i = int(np.flatnonzero(garbage)[0])
            raise SeqpipeError(f"not a number: {text.iloc[i]!r} (ticker {ticker})", where=_where(path, lines[i], c),
                               fix="fix the cell or remove the row")
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
            raise SeqpipeError(f"missing or non-finite value {txt!r} (ticker {ticker}; {int(nonfinite.sum())} such rows)",
                               where=_where(path, line, c), fix="fix the rows, or set data.nonfinite: drop to drop them")
        repairs["nonfinite_rows_dropped"] = int(nonfinite.sum())
    keep = ~nonfinite
    dates = dates.to_numpy()[keep].astype("datetime64[D]")
    lines = lines[keep]
    values = {c: v[keep] for c, v in values.items()}
    for c in PRICES:
        if c in values and (values[c] <= 0).any():
            i = int(np.flatnonzero(values[c] <= 0)[0])
            raise SeqpipeError(f"non-positive price {values[c][i]:g} (ticker {ticker})", where=_where(path, lines[i], c),
                               fix="prices must be > 0 (log returns); fix or remove the row")
    if (values["volume"] < 0).any():
        i = int(np.flatnonzero(values["volume"] < 0)[0])
        raise SeqpipeError(f"negative volume {values['volume'][i]:g} (ticker {ticker})",
                           where=_where(path, lines[i], "volume"), fix="fix or remove the row")
    back = np.flatnonzero(np.diff(dates) < np.timedelta64(0, "D"))
    if len(back):
        if rules.unsorted == "error":
            i = int(back[0]) + 1
            raise SeqpipeError(f"rows not sorted by date: {dates[i]} comes after {dates[i - 1]} (ticker {ticker})",
                               where=_where(path, lines[i], "date"), fix="sort the file by date, or set data.unsorted: sort")
        repairs["unsorted_rows_sorted"] = int(len(back))
        order = np.argsort(dates, kind="stable")
        dates, lines = dates[order], lines[order]
        values = {c: v[order] for c, v in values.items()}
    dup = np.flatnonzero(np.diff(dates) == np.timedelta64(0, "D"))
    if len(dup):
        if rules.duplicates == "error":
            i = int(dup[0])
            raise SeqpipeError(f"duplicated date {dates[i]} on lines {lines[i]} and {lines[i + 1]} (ticker {ticker})",
                               where=_where(path, lines[i + 1], "date"),
                               fix="remove the duplicate row, or set data.duplicates: keep_last")
        keep = np.ones(len(dates), dtype=bool)
        keep[dup] = False  # of equal dates (stable-sorted), the later line wins
        repairs["duplicate_rows_dropped"] = int(len(dup))
        dates, lines = dates[keep], lines[keep]
        values = {c: v[keep] for c, v in values.items()}
    gap = np.flatnonzero(np.diff(dates) > np.timedelta64(rules.max_gap_days, "D"))
    if len(gap):
        if rules.gaps == "error":
            i = int(gap[0])
            raise SeqpipeError(f"missing dates: {int((dates[i + 1] - dates[i]).astype(int))} days between {dates[i]} and "
                               f"{dates[i + 1]} (more than max_gap_days={rules.max_gap_days}; ticker {ticker})",
                               where=_where(path, lines[i + 1], "date"),
                               fix="supply the missing rows, or set data.gaps: keep to accept the gap (no day is invented)")
        repairs["gaps_kept"] = int(len(gap))
    return TickerSeries(ticker=ticker, file=str(path), dates=dates, open=values["open"], high=values["high"],
                        low=values["low"], close=values["close"], adj_close=values.get("adj_close"),
                        volume=values["volume"], line=lines, repairs=repairs)


# -- the embedded default ----------------------------------------------------------------------
EMBEDDED = ("SP500", "NASDAQ", "AAPL", "GOOG", "IBM", "MSFT")


def embedded_frames() -> dict[str, pd.DataFrame]:
    """Daily OHLCV that pip packages ship: S&P 500 and NASDAQ (arch, 1999-2018), AAPL/GOOG/IBM/MSFT
    (bokeh_sampledata, 2000-2013; GOOG from 2004). FB (9 months) is left out: shorter than a split."""
    try:
        from arch.data import nasdaq, sp500
        from bokeh_sampledata.stocks import data as bokeh
    except ImportError as e:
        raise SeqpipeError(f"the default stock data needs the 'arch' and 'bokeh_sampledata' packages ({e})",
                           where="data/raw/stocks", fix="pip install arch bokeh_sampledata (pyproject lists both)") from e
    cols = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]
    frames = {}
    for name, mod in (("SP500", sp500), ("NASDAQ", nasdaq)):
        d = mod.load().reset_index()
        frames[name] = d.rename(columns={d.columns[0]: "Date"})[cols]
    rename = {"date": "Date", "open": "Open", "high": "High", "low": "Low", "close": "Close",
              "adj_close": "Adj Close", "volume": "Volume"}
    for ticker in ("AAPL", "GOOG", "IBM", "MSFT"):
        frames[ticker] = bokeh[bokeh["ticker"] == ticker].rename(columns=rename)[cols].reset_index(drop=True)
    return frames


def export_embedded(out_dir: str | Path) -> list[Path]:
    """Write the embedded default as one CSV a ticker (the layout any user's export has)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in embedded_frames().items():
        frame = frame.copy()
        frame["Date"] = pd.to_datetime(frame["Date"]).dt.strftime("%Y-%m-%d")
        path = out_dir / f"{name}.csv"
        tmp = path.with_suffix(".csv.tmp")
        frame.to_csv(tmp, index=False, float_format="%.10g")
        tmp.replace(path)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="export the embedded default stock data to CSV files")
    p.add_argument("out_dir", nargs="?", default="data/raw/stocks")
    args = p.parse_args(argv)
    for path in export_embedded(args.out_dir):
        print(f"[seqpipe] wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
