"""Preprocessing stocks: read and validate every ticker, featurize, split by date with an embargo, fit
normalization on train rows, and write the prepared store with its meta.json.

Separate from the datamodule because it runs once (the preprocess stage), while the datamodule
only reads the store it writes; both read the settings from ``StockSettings`` (seqpipe.domains.stocks.settings).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from seqpipe.data.spec import DataSpec
from seqpipe.data.store import SPLITS, PreparedStore, StoreWriter, fingerprint
from seqpipe.domains.stocks.features import EMBARGO, causal_features, feature_warmup, split_codes
from seqpipe.domains.stocks.settings import StockSettings
from seqpipe.domains.stocks.source.read import read_ohlcv, resolve_files
from seqpipe.domains.stocks.source.schema import TickerSeries
from seqpipe.errors import SeqpipeError

log = logging.getLogger(__name__)


class Kept(NamedTuple):
    """One ticker that goes into the store: its rows after the feature warmup, each with its split code."""

    series: TickerSeries
    features: np.ndarray
    returns: np.ndarray
    price_column: str
    codes: np.ndarray


class Normalization(NamedTuple):
    """Fitted on train rows only: feature mean and std, and the target scale (train std of returns)."""

    mean: np.ndarray
    std: np.ndarray
    target_scale: float


def prepare_stocks(source: str | Sequence[str], out_dir: str | Path, **settings: Any) -> PreparedStore:
    """Read, validate, featurize and split every ticker; fit normalization on train rows; write the store.

    ``settings``: the other StockSettings (features, lookback, horizon, embargo, val_start, test_start,
    price_column, rules, short_series), defaults as there.
    """
    return write_stock_store(StockSettings(source=source, **settings), out_dir)


def write_stock_store(settings: StockSettings, out_dir: str | Path) -> PreparedStore:
    """``prepare_stocks`` on settings already gathered."""
    vs, ts = _check(settings)
    warm = feature_warmup(settings.features)
    files = resolve_files(settings.source)
    kept, skipped, repairs = _featurize(read_ohlcv(files, settings.rules), settings, warm, vs, ts)
    if not kept:
        raise SeqpipeError(
            "no ticker is long enough",
            where=", ".join(map(str, files[:3])),
            fix="supply longer series or shorten data.lookback/horizon",
        )
    norm = _fit_normalization(kept, settings, files)
    fp = fingerprint(files, extra=settings.fingerprint_extra())
    with StoreWriter(out_dir, domain="stocks") as w:
        tickers, split_rows = _append_tickers(w, kept, norm, warm)
        spec = DataSpec(
            input="features",
            target="regression",
            feature_dim=len(settings.features),
            output_dim=settings.horizon,
            max_len=settings.lookback,
            causal=True,
        )
        stocks = _stocks_meta(settings, warm, norm, tickers, split_rows, repairs, skipped)
        w.commit(
            {
                "name": Path(out_dir).name,
                "source": [str(f) for f in files],
                "fingerprint": fp,
                "spec": spec.to_dict(),
                "settings": settings.recorded(),
                "date_formats": {k.series.ticker: k.series.date_format for k in kept},
                "repairs": repairs,
                "skipped": skipped,
                "stocks": stocks,
            }
        )
    for ticker, rep in repairs.items():
        log.info("stocks repairs %s: %s", ticker, rep)
    for k in skipped:
        log.warning("stocks skipped %s: %s", k["ticker"], k["reason"])
    return PreparedStore.open(out_dir)


def _check(s: StockSettings) -> tuple[np.datetime64, np.datetime64]:
    """Refuse settings no store can be prepared with; the split dates as numpy days."""
    lookback, horizon = s.lookback, s.horizon
    if lookback < 1 or horizon < 1:
        raise SeqpipeError(f"lookback ({lookback}) and horizon ({horizon}) must be >= 1", where="data.lookback/horizon")
    need = lookback + horizon
    if s.resolved_embargo < need:
        raise SeqpipeError(
            f"embargo {s.resolved_embargo} is shorter than lookback + horizon = {need}",
            where="data.embargo",
            fix=f"set data.embargo >= {need} (or leave it unset)",
        )
    if s.short_series not in ("error", "skip"):
        raise SeqpipeError(
            f"unknown rule short_series={s.short_series!r}", where="data.short_series", fix="use error or skip"
        )
    try:
        vs, ts = np.datetime64(s.val_start, "D"), np.datetime64(s.test_start, "D")
    except ValueError as e:
        raise SeqpipeError(
            f"split dates must be ISO dates like 2011-01-01 ({e})", where="data.val_start/test_start"
        ) from e
    if not vs < ts:
        raise SeqpipeError(
            f"val_start {s.val_start} must come before test_start {s.test_start}", where="data.val_start"
        )
    return vs, ts


def _featurize(
    series: list[TickerSeries], s: StockSettings, warm: int, vs: np.datetime64, ts: np.datetime64
) -> tuple[list[Kept], list[dict[str, Any]], dict[str, dict]]:
    """Causal features and split codes of every ticker long enough; the others skipped (or refused)."""
    need, embargo = s.lookback + s.horizon, s.resolved_embargo
    kept, skipped, repairs = [], [], {}
    for t in series:
        if t.repairs:
            repairs[t.ticker] = dict(t.repairs)
        feats, ret, used = causal_features(t, list(s.features), s.price_column)
        n = len(t) - warm
        if n < need + embargo:
            problem = (
                f"series too short: {len(t)} rows, {n} after the {warm}-row feature warmup; needs at least "
                f"lookback + horizon + embargo = {need + embargo} (ticker {t.ticker})"
            )
            if s.short_series == "error":
                raise SeqpipeError(
                    problem,
                    where=t.file,
                    fix="supply a longer series, shorten data.lookback/horizon, or set data.short_series: skip",
                )
            skipped.append({"ticker": t.ticker, "file": t.file, "rows": len(t), "reason": problem})
            continue
        kept.append(Kept(t, feats[warm:], ret[warm:], used, split_codes(t.dates[warm:], vs, ts, embargo)))
    return kept, skipped, repairs


def _fit_normalization(kept: list[Kept], s: StockSettings, files: list[Path]) -> Normalization:
    """Feature mean/std and the target scale, from train rows only."""
    train = np.concatenate([k.features[k.codes == 0] for k in kept])
    train_ret = np.concatenate([k.returns[k.codes == 0] for k in kept])
    if len(train) < s.lookback + s.horizon:
        raise SeqpipeError(
            f"only {len(train)} train rows before val_start {s.val_start}",
            where=", ".join(map(str, files[:3])),
            fix="move data.val_start later",
        )
    mean, std = train.mean(0), train.std(0)
    std = np.where(std > 0, std, 1.0)
    return Normalization(mean, std, float(train_ret.std()) or 1.0)


def _append_tickers(
    w: StoreWriter, kept: list[Kept], norm: Normalization, warm: int
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Every ticker's rows, contiguous; one index record a ticker x split. Returns the tickers' meta and
    the rows of each split."""
    offsets, lengths, splits, tick = [], [], [], []
    tickers, split_rows = [], {name: 0 for name in SPLITS}
    for t, (s, f, r, used, code) in enumerate(kept):
        base = w.append("features", ((f - norm.mean) / norm.std).astype(np.float32))
        w.append("returns", r.astype(np.float32))
        w.append("dates", (s.dates[warm:] - np.datetime64("1970-01-01", "D")).astype(np.int32))
        for sp in range(3):
            rows = np.flatnonzero(code == sp)
            if len(rows):
                offsets.append(base + int(rows[0]))
                lengths.append(len(rows))
                splits.append(sp)
                tick.append(t)
                split_rows[SPLITS[sp]] += len(rows)
        tickers.append(
            {
                "ticker": s.ticker,
                "file": s.file,
                "offset": base,
                "rows": len(f),
                "price_column": used,
                "first_date": str(s.dates[warm]),
                "last_date": str(s.dates[-1]),
                "rows_per_split": {SPLITS[sp]: int((code == sp).sum()) for sp in range(3)},
                "embargo_rows": int((code == EMBARGO).sum()),
            }
        )
    w.set_index(offset=offsets, length=lengths, split=splits, ticker=tick)
    return tickers, split_rows


def _stocks_meta(
    s: StockSettings,
    warm: int,
    norm: Normalization,
    tickers: list[dict[str, Any]],
    split_rows: dict[str, int],
    repairs: dict[str, dict],
    skipped: list[dict[str, Any]],
) -> dict[str, Any]:
    """meta.json["stocks"]: what the datamodule, evaluation and predict read back."""
    return {
        "features": list(s.features),
        "lookback": s.lookback,
        "horizon": s.horizon,
        "embargo": s.resolved_embargo,
        "warmup": warm,
        "val_start": s.val_start,
        "test_start": s.test_start,
        "price_column": s.price_column,
        "rules": dict(s.rules.__dict__, short_series=s.short_series),
        "normalization": {"mean": norm.mean.tolist(), "std": norm.std.tolist(), "fitted_on": "train rows"},
        "target_scale": norm.target_scale,
        "units": "percent log returns",
        "tickers": tickers,
        "split_rows": split_rows,
        "repairs": repairs,
        "skipped": [k["ticker"] for k in skipped],
    }
