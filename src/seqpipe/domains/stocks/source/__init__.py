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

Modules: ``schema`` (columns, ``Rules``, ``TickerSeries``), ``read`` (files and columns ->
series), ``dates`` (one date format a file), ``validate`` (one ticker's rows checked and repaired),
``embedded`` (the default data, ``python -m seqpipe.domains.stocks.source``). The names below are
importable from here.
"""

from seqpipe.domains.stocks.source.dates import parse_dates
from seqpipe.domains.stocks.source.embedded import EMBEDDED, embedded_frames, export_embedded, main
from seqpipe.domains.stocks.source.read import CSV_SUFFIXES, read_csv, read_ohlcv, resolve_files
from seqpipe.domains.stocks.source.schema import DISPLAY, PRICES, REQUIRED, Rules, TickerSeries

__all__ = [
    "CSV_SUFFIXES",
    "DISPLAY",
    "EMBEDDED",
    "PRICES",
    "REQUIRED",
    "Rules",
    "TickerSeries",
    "embedded_frames",
    "export_embedded",
    "main",
    "parse_dates",
    "read_csv",
    "read_ohlcv",
    "resolve_files",
]
