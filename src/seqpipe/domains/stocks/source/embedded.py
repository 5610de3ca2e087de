"""The embedded default stock data: daily OHLCV that pip packages ship, exported as one CSV a ticker.

Separate from the reader: this is where the default data comes from (``python -m
seqpipe.domains.stocks.source``, the stocks_raw stage), while the reader reads any user's export the same way.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from seqpipe.data.generated import GeneratedFolder, generator_parser
from seqpipe.errors import SeqpipeError

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
        out_dir, "seqpipe.domains.stocks.source", data="the embedded default (bokeh_sampledata, arch)"
    ) as folder:
        names = []
        for name, frame in embedded_frames().items():
            frame = frame.copy()
            frame["Date"] = pd.to_datetime(frame["Date"]).dt.strftime("%Y-%m-%d")
            frame.to_csv(folder.path / f"{name}.csv", index=False, float_format="%.10g")
            names.append(f"{name}.csv")
    return [folder.out / n for n in names]


def main(argv: list[str] | None = None) -> int:
    p = generator_parser(
        "export the embedded default stock data to CSV files", None, "python -m seqpipe.domains.stocks.source"
    )
    p.add_argument("out_dir", nargs="?", default="data/raw/stocks")
    args = p.parse_args(argv)
    for path in export_embedded(args.out_dir):
        print(f"[seqpipe] wrote {path}")
    return 0
