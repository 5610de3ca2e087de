"""Preprocessing stocks: read and validate every ticker, featurize, split by date with an embargo, fit
normalization on train rows, and write the prepared store with its meta.json.

Separate from the datamodule because it runs once (the preprocess stage), while the datamodule
only reads the store it writes; ``stocks_settings`` is what both compare.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seqpipe.data.spec import DataSpec
from seqpipe.data.store import SPLITS, PreparedStore, StoreWriter, fingerprint
from seqpipe.domains.stocks.features import DEFAULT_FEATURES, EMBARGO, causal_features, feature_warmup, split_codes
from seqpipe.domains.stocks.source.read import read_ohlcv, resolve_files
from seqpipe.domains.stocks.source.schema import Rules
from seqpipe.errors import SeqpipeError

log = logging.getLogger(__name__)


def prepare_stocks(
    source: str | Sequence[str],
    out_dir: str | Path,
    *,
    features: Sequence[str] = DEFAULT_FEATURES,
    lookback: int = 60,
    horizon: int = 5,
    embargo: int | None = None,
    val_start: str = "2009-07-01",
    test_start: str = "2011-01-01",
    price_column: str = "auto",
    rules: Rules = Rules(),
    short_series: str = "error",
) -> PreparedStore:
    """Read, validate, featurize and split every ticker; fit normalization on train rows; write the store."""
    settings = stocks_settings(
        source,
        features=list(features),
        lookback=lookback,
        horizon=horizon,
        embargo=embargo,
        val_start=val_start,
        test_start=test_start,
        price_column=price_column,
        rules=rules,
        short_series=short_series,
    )
    if lookback < 1 or horizon < 1:
        raise SeqpipeError(f"lookback ({lookback}) and horizon ({horizon}) must be >= 1", where="data.lookback/horizon")
    need = lookback + horizon
    embargo = need if embargo is None else int(embargo)
    if embargo < need:
        raise SeqpipeError(
            f"embargo {embargo} is shorter than lookback + horizon = {need}",
            where="data.embargo",
            fix=f"set data.embargo >= {need} (or leave it unset)",
        )
    if short_series not in ("error", "skip"):
        raise SeqpipeError(
            f"unknown rule short_series={short_series!r}", where="data.short_series", fix="use error or skip"
        )
    val_start, test_start = str(val_start), str(test_start)
    try:
        vs, ts = np.datetime64(val_start, "D"), np.datetime64(test_start, "D")
    except ValueError as e:
        raise SeqpipeError(
            f"split dates must be ISO dates like 2011-01-01 ({e})", where="data.val_start/test_start"
        ) from e
    if not vs < ts:
        raise SeqpipeError(f"val_start {val_start} must come before test_start {test_start}", where="data.val_start")
    features = list(features)
    warm = feature_warmup(features)
    files = resolve_files(source)
    series = read_ohlcv(files, rules)

    kept, skipped, repairs = [], [], {}
    for s in series:
        if s.repairs:
            repairs[s.ticker] = dict(s.repairs)
        feats, ret, used = causal_features(s, features, price_column)
        n = len(s) - warm
        if n < need + embargo:
            problem = (
                f"series too short: {len(s)} rows, {n} after the {warm}-row feature warmup; needs at least "
                f"lookback + horizon + embargo = {need + embargo} (ticker {s.ticker})"
            )
            if short_series == "error":
                raise SeqpipeError(
                    problem,
                    where=s.file,
                    fix="supply a longer series, shorten data.lookback/horizon, or set data.short_series: skip",
                )
            skipped.append({"ticker": s.ticker, "file": s.file, "rows": len(s), "reason": problem})
            continue
        kept.append((s, feats[warm:], ret[warm:], used, split_codes(s.dates[warm:], vs, ts, embargo)))
    if not kept:
        raise SeqpipeError(
            "no ticker is long enough",
            where=", ".join(map(str, files[:3])),
            fix="supply longer series or shorten data.lookback/horizon",
        )
    train = np.concatenate([f[c == 0] for _, f, _, _, c in kept])
    train_ret = np.concatenate([r[c == 0] for _, _, r, _, c in kept])
    if len(train) < need:
        raise SeqpipeError(
            f"only {len(train)} train rows before val_start {val_start}",
            where=", ".join(map(str, files[:3])),
            fix="move data.val_start later",
        )
    mean, std = train.mean(0), train.std(0)
    std = np.where(std > 0, std, 1.0)
    target_scale = float(train_ret.std()) or 1.0

    fp = fingerprint(
        files,
        extra=dict(
            features=features,
            lookback=lookback,
            horizon=horizon,
            embargo=embargo,
            val_start=val_start,
            test_start=test_start,
            price_column=price_column,
            rules=rules.__dict__,
            short_series=short_series,
        ),
    )
    offsets, lengths, splits, tick = [], [], [], []
    tickers, split_rows = [], {name: 0 for name in SPLITS}
    with StoreWriter(out_dir, domain="stocks") as w:
        for t, (s, f, r, used, code) in enumerate(kept):
            base = w.append("features", ((f - mean) / std).astype(np.float32))
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
        spec = DataSpec(
            input="features",
            target="regression",
            feature_dim=len(features),
            output_dim=horizon,
            max_len=lookback,
            causal=True,
        )
        w.commit(
            {
                "name": Path(out_dir).name,
                "source": [str(f) for f in files],
                "fingerprint": fp,
                "spec": spec.to_dict(),
                "settings": settings,
                "date_formats": {s.ticker: s.date_format for s, *_ in kept},
                "repairs": repairs,
                "skipped": skipped,
                "stocks": {
                    "features": features,
                    "lookback": lookback,
                    "horizon": horizon,
                    "embargo": embargo,
                    "warmup": warm,
                    "val_start": val_start,
                    "test_start": test_start,
                    "price_column": price_column,
                    "rules": dict(rules.__dict__, short_series=short_series),
                    "normalization": {"mean": mean.tolist(), "std": std.tolist(), "fitted_on": "train rows"},
                    "target_scale": target_scale,
                    "units": "percent log returns",
                    "tickers": tickers,
                    "split_rows": split_rows,
                    "repairs": repairs,
                    "skipped": [k["ticker"] for k in skipped],
                },
            }
        )
    for ticker, rep in repairs.items():
        log.info("stocks repairs %s: %s", ticker, rep)
    for k in skipped:
        log.warning("stocks skipped %s: %s", k["ticker"], k["reason"])
    return PreparedStore.open(out_dir)


def stocks_settings(
    source: str | Sequence[str],
    *,
    features: Sequence[str],
    lookback: int,
    horizon: int,
    embargo: int | None,
    val_start: str,
    test_start: str,
    price_column: str,
    rules: Rules,
    short_series: str,
) -> dict[str, Any]:
    """The preprocessing settings a stocks store records in meta.json["settings"] (compared by fit/evaluate)."""
    return {
        "source": source if isinstance(source, str) else [str(x) for x in source],
        "features": list(features),
        "lookback": lookback,
        "horizon": horizon,
        "embargo": embargo,
        "val_start": str(val_start),
        "test_start": str(test_start),
        "price_column": price_column,
        "short_series": short_series,
        **{k: v for k, v in rules.__dict__.items()},
    }
