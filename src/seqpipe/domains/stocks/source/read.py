"""Reading OHLCV CSV files: a file, a folder or a list of them -> validated ``TickerSeries``, one per
ticker, in a fixed order (a file per ticker, or a long table with a ticker column).

Separate from the checks (``dates``, ``validate``): this is the file and column handling -- which
files, which columns under which spelling, which ticker -- and nothing about the values.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from seqpipe.domains.stocks.source.dates import parse_dates
from seqpipe.domains.stocks.source.schema import DISPLAY, REQUIRED, Rules, TickerSeries
from seqpipe.domains.stocks.source.validate import _validate
from seqpipe.errors import SeqpipeError

CSV_SUFFIXES = (".csv", ".csv.gz", ".txt")


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
