"""Stocks: CSV reading and bad input, causal features, leakage-free splits and windows, baselines, predict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seqpipe.domains.stocks import task as ev
from seqpipe.domains.stocks.baselines import baseline_forecasts, fit_garch
from seqpipe.domains.stocks.datamodule import StockDataModule
from seqpipe.domains.stocks.features import EMBARGO, causal_features, make_targets, split_codes
from seqpipe.domains.stocks.source import Rules, read_csv, read_ohlcv
from seqpipe.errors import SeqpipeError

COLS = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]
SPLITS = dict(val_start="2006-01-01", test_start="2007-01-01")  # synthetic data starts 2004-01-01


def frame(n: int = 900, seed: int = 0, start: str = "2004-01-01") -> pd.DataFrame:
    """A synthetic daily OHLCV series with volatility clustering (GARCH-like), business days only."""
    rng = np.random.default_rng(seed)
    var, r = 1.0, np.empty(n)
    for t in range(n):
        var = 0.05 + 0.1 * (r[t - 1] ** 2 if t else 1.0) + 0.85 * var
        r[t] = np.sqrt(var) * rng.standard_normal()
    close = 50 * np.exp(np.cumsum(r / 100))
    spread = np.abs(rng.normal(0, 0.01, n)) + 0.002
    return pd.DataFrame(
        {
            "Date": pd.bdate_range(start, periods=n).strftime("%Y-%m-%d"),
            "Open": close * (1 + rng.normal(0, 0.002, n)),
            "High": close * (1 + spread),
            "Low": close * (1 - spread),
            "Close": close,
            "Adj Close": close * 0.5,
            "Volume": rng.integers(1_000_000, 5_000_000, n),
        }
    )[COLS]


def write(tmp: Path, name: str, df: pd.DataFrame) -> Path:
    p = tmp / name
    df.to_csv(p, index=False)
    return p


@pytest.fixture
def two_tickers(tmp_path: Path) -> Path:
    d = tmp_path / "raw"
    d.mkdir()
    write(d, "AAA.csv", frame(900, 0))
    write(d, "BBB.csv", frame(800, 1, start="2004-03-01"))
    return d


def prepared(src, tmp: Path, **kw) -> StockDataModule:
    args = dict(
        lookback=20,
        horizon=3,
        features=["log_return", "hl_range", "volume_change", "realized_vol_5"],
        batch_size=16,
        **SPLITS,
    )
    args.update(kw)
    dm = StockDataModule(source=str(src), prepared_dir=str(tmp / "prep"), rebuild=True, **args)
    dm.prepare_data()
    dm.rebuild = False
    dm.setup()
    return dm


# -- reading --------------------------------------------------------------------------------
def test_columns_case_insensitive_and_file_per_ticker(tmp_path):
    df = frame(50).rename(columns={"Date": "date", "Open": "OPEN", "Adj Close": "adj_close", "Volume": "volume"})
    [s] = read_csv(write(tmp_path, "XYZ.csv", df))
    assert s.ticker == "XYZ" and len(s) == 50
    assert np.allclose(s.adj_close, df["adj_close"]) and s.dates[0] == np.datetime64("2004-01-01")
    assert s.line.tolist() == list(range(2, 52))


def test_long_table_with_ticker_column(tmp_path):
    a, b = frame(40, 0), frame(30, 1)
    long = pd.concat([a.assign(Symbol="B2"), b.assign(Symbol="A1")])
    series = read_ohlcv(write(tmp_path, "all.csv", long))
    assert [s.ticker for s in series] == ["A1", "B2"]
    assert [len(s) for s in series] == [30, 40]
    assert np.allclose(series[1].close, a["Close"])
    assert series[0].line[0] == 42  # A1's first row follows 40 rows of B2 and the header


def test_missing_column_names_file_and_column(tmp_path):
    p = write(tmp_path, "X.csv", frame(30).drop(columns="Volume"))
    with pytest.raises(SeqpipeError, match=r"X\.csv, column Volume.*missing column"):
        read_csv(p)


def test_nonfinite_dropped_and_counted_or_error(tmp_path):
    df = frame(40).astype({"Close": object, "Volume": object, "High": object})
    df.loc[5, "Close"] = "nan"
    df.loc[9, "High"] = np.inf
    df.loc[12, "Volume"] = ""
    p = write(tmp_path, "X.csv", df)
    [s] = read_csv(p, Rules(nonfinite="drop"))
    assert len(s) == 37 and s.repairs == {"nonfinite_rows_dropped": 3}
    assert 7 not in s.line and 11 not in s.line and 14 not in s.line
    with pytest.raises(SeqpipeError, match=r"X\.csv, line 7, column Close: missing or non-finite"):
        read_csv(p, Rules(nonfinite="error"))


def test_nonfinite_repair_count_reaches_meta(tmp_path):
    d = tmp_path / "raw"
    d.mkdir()
    df = frame(900)
    df.loc[100, "Open"] = np.nan
    write(d, "AAA.csv", df)
    dm = prepared(d, tmp_path)
    assert dm.meta["repairs"] == {"AAA": {"nonfinite_rows_dropped": 1}}
    assert dm.meta["stocks"]["repairs"] == {"AAA": {"nonfinite_rows_dropped": 1}}


def test_text_in_number_cell_is_an_error(tmp_path):
    df = frame(30).astype({"Low": object})
    df.loc[3, "Low"] = "12,5x"
    with pytest.raises(SeqpipeError, match=r"line 5, column Low: not a number"):
        read_csv(write(tmp_path, "X.csv", df))


def test_missing_date_cell_is_an_error(tmp_path):
    df = frame(30)
    df.loc[10, "Date"] = ""
    with pytest.raises(SeqpipeError, match=r"X\.csv, line 12, column Date: missing or unreadable date"):
        read_csv(write(tmp_path, "X.csv", df))


def test_missing_dates_gap_error_or_kept(tmp_path):
    df = frame(60).drop(index=range(20, 35))  # three weeks of trading days missing
    p = write(tmp_path, "X.csv", df)
    with pytest.raises(
        SeqpipeError, match=r"line 22, column Date: missing dates: 22 days between 2004-01-28 and 2004-02-19"
    ):
        read_csv(p, Rules(gaps="error", max_gap_days=10))
    [s] = read_csv(p, Rules(gaps="keep"))
    assert s.repairs == {"gaps_kept": 1} and len(s) == 45  # no day invented


def test_duplicated_dates_error_or_keep_last(tmp_path):
    df = frame(30)
    dup = df.iloc[[7]].copy()
    dup["Close"] = 99.0
    df = pd.concat([df.iloc[:8], dup, df.iloc[8:]])
    p = write(tmp_path, "X.csv", df)
    with pytest.raises(SeqpipeError, match=r"line 10, column Date: duplicated date 2004-01-12 on lines 9 and 10"):
        read_csv(p)
    [s] = read_csv(p, Rules(duplicates="keep_last"))
    assert len(s) == 30 and s.repairs == {"duplicate_rows_dropped": 1}
    assert s.close[7] == 99.0 and s.line[7] == 10


def test_unsorted_rows_sorted_and_counted_or_error(tmp_path):
    df = frame(40)
    shuffled = pd.concat([df.iloc[:10], df.iloc[20:25], df.iloc[10:20], df.iloc[25:]])
    p = write(tmp_path, "X.csv", shuffled)
    [s] = read_csv(p, Rules(unsorted="sort"))
    [ref] = read_csv(write(tmp_path, "Y.csv", df))
    assert s.repairs == {"unsorted_rows_sorted": 1}
    assert np.array_equal(s.dates, ref.dates) and np.array_equal(s.close, ref.close)
    with pytest.raises(SeqpipeError, match=r"line 17, column Date: rows not sorted by date"):
        read_csv(p, Rules(unsorted="error"))


@pytest.mark.parametrize(
    "col,value,match",
    [
        ("Close", 0.0, "column Close: non-positive price 0"),
        ("Low", -3.0, "column Low: non-positive price -3"),
        ("Volume", -1, "column Volume: negative volume"),
    ],
)
def test_non_positive_prices_are_errors(tmp_path, col, value, match):
    df = frame(30)
    df.loc[4, col] = value
    with pytest.raises(SeqpipeError, match=r"X\.csv, line 6, " + match):
        read_csv(write(tmp_path, "X.csv", df))


def test_short_series_error_or_skipped(tmp_path):
    d = tmp_path / "raw"
    d.mkdir()
    write(d, "AAA.csv", frame(900))
    write(d, "TINY.csv", frame(40, start="2006-06-01"))
    with pytest.raises(SeqpipeError, match=r"TINY\.csv: series too short: 40 rows.*needs at least.*= 46"):
        prepared(d, tmp_path)
    dm = prepared(d, tmp_path, short_series="skip")
    assert [t["ticker"] for t in dm.meta["stocks"]["tickers"]] == ["AAA"]
    assert dm.meta["stocks"]["skipped"] == ["TINY"] and "too short" in dm.meta["skipped"][0]["reason"]


def test_embargo_shorter_than_lookback_plus_horizon_refused(two_tickers, tmp_path):
    with pytest.raises(SeqpipeError, match=r"data.embargo: embargo 10 is shorter than lookback \+ horizon = 23"):
        prepared(two_tickers, tmp_path, embargo=10)


# -- features and leakage -------------------------------------------------------------------
def test_feature_values(tmp_path):
    df = frame(40)
    [s] = read_csv(write(tmp_path, "X.csv", df))
    f, ret, used = causal_features(s, ["log_return", "hl_range", "volume_change", "realized_vol_3"])
    p, v = df["Adj Close"].to_numpy(), df["Volume"].to_numpy() * 2.0  # split factor Close/Adj Close = 2
    assert used == "adj_close" and np.isnan(f[0, 0]) and np.isnan(f[:3, 3]).all()
    assert f[10, 0] == pytest.approx(100 * np.log(p[10] / p[9]))
    assert f[10, 1] == pytest.approx(100 * np.log(df["High"][10] / df["Low"][10]))
    assert f[10, 2] == pytest.approx(np.log((v[10] + 1) / (v[9] + 1)))
    r = 100 * np.log(p[8:11] / p[7:10])
    assert f[10, 3] == pytest.approx(np.sqrt(np.mean(r**2)))


@pytest.mark.parametrize("t", [3, 50, 200, 598])
def test_no_look_ahead_in_features(tmp_path, t):
    """Changing any value after day t changes no feature at or before t."""
    df = frame(600, seed=t)
    feats = ["log_return", "hl_range", "volume_change", "realized_vol_5", "realized_vol_22"]
    [a] = read_csv(write(tmp_path, "A.csv", df))
    rng = np.random.default_rng(t)
    later = df.index > t
    changed = df.copy()
    for c in ("Open", "High", "Low", "Close", "Adj Close"):
        changed.loc[later, c] = changed.loc[later, c] * rng.uniform(0.5, 2.0, later.sum())
    changed.loc[later, "High"] = changed.loc[later, ["Open", "High", "Low", "Close"]].max(axis=1) * 1.01
    changed.loc[later, "Volume"] = rng.integers(1, 10**7, later.sum())
    [b] = read_csv(write(tmp_path, "B.csv", changed))
    fa, ra, _ = causal_features(a, feats)
    fb, rb, _ = causal_features(b, feats)
    assert np.array_equal(fa[: t + 1], fb[: t + 1], equal_nan=True)
    assert np.array_equal(ra[: t + 1], rb[: t + 1], equal_nan=True)
    if t + 1 < len(df):
        assert not np.array_equal(fa[t + 1 :], fb[t + 1 :], equal_nan=True)


def test_no_look_ahead_in_prepared_store(tmp_path):
    """Perturbing prices after a test-period day t leaves every stored input up to t, and the
    train-only normalization and target scale, unchanged."""
    d1, d2 = tmp_path / "a", tmp_path / "b"
    d1.mkdir(), d2.mkdir()
    df = frame(900)
    write(d1, "AAA.csv", df)
    t = 800  # a test-period row (dates from 2007)
    later = df.index > t
    changed = df.copy()
    changed.loc[later, ["Open", "High", "Low", "Close", "Adj Close"]] *= 3.0
    changed.loc[later, "Volume"] = 7
    write(d2, "AAA.csv", changed)
    a, b = prepared(d1, tmp_path / "pa"), prepared(d2, tmp_path / "pb")
    sa, sb = a.meta["stocks"], b.meta["stocks"]
    assert sa["normalization"] == sb["normalization"] and sa["target_scale"] == sb["target_scale"]
    cutoff = np.datetime64(df["Date"][t])
    keep = a.dates_of(np.arange(len(a.store.arrays["dates"]))) <= cutoff
    assert keep.sum() > 700
    assert np.array_equal(np.asarray(a.store.arrays["features"])[keep], np.asarray(b.store.arrays["features"])[keep])
    assert not np.array_equal(
        np.asarray(a.store.arrays["features"])[~keep], np.asarray(b.store.arrays["features"])[~keep]
    )


def test_normalization_depends_on_train_rows_only(two_tickers, tmp_path):
    dm = prepared(two_tickers, tmp_path)
    m = dm.meta["stocks"]
    series = read_ohlcv(two_tickers)
    rows, rets = [], []
    for s in series:
        f, r, _ = causal_features(s, m["features"])
        f, r = f[m["warmup"] :], r[m["warmup"] :]
        train = s.dates[m["warmup"] :] < np.datetime64(SPLITS["val_start"])
        rows.append(f[train]), rets.append(r[train])
    train = np.concatenate(rows)
    assert np.allclose(m["normalization"]["mean"], train.mean(0)) and np.allclose(
        m["normalization"]["std"], train.std(0)
    )
    assert m["target_scale"] == pytest.approx(np.concatenate(rets).std())
    # the stored train features are standardized: mean 0, std 1
    tr = np.concatenate(
        [
            np.asarray(dm.store.arrays["features"])[o : o + n]
            for o, n, sp in zip(
                dm.store.index["offset"], dm.store.index["length"], dm.store.index["split"], strict=True
            )
            if sp == 0
        ]
    )
    assert np.allclose(tr.mean(0), 0, atol=1e-5) and np.allclose(tr.std(0), 1, atol=1e-4)


def test_split_codes_and_embargo():
    dates = np.arange(np.datetime64("2005-12-20"), np.datetime64("2007-01-20"))
    code = split_codes(dates, np.datetime64("2006-01-01"), np.datetime64("2007-01-01"), embargo=5)
    assert (code[dates < np.datetime64("2006-01-01")] == 0).all()
    assert code[12:17].tolist() == [EMBARGO] * 5 and code[17] == 1
    first_test = int(np.flatnonzero(dates == np.datetime64("2007-01-01"))[0])
    assert code[first_test : first_test + 5].tolist() == [EMBARGO] * 5 and (code[first_test + 5 :] == 2).all()


def test_windows_never_cross_tickers_splits_or_time(two_tickers, tmp_path):
    dm = prepared(two_tickers, tmp_path, lookback=20, horizon=3)
    L, H = 20, 3
    dates = np.asarray(dm.store.arrays["dates"])
    idx = dm.store.index
    for split in ("train", "val", "test"):
        ds = dm.datasets[split]
        o = ds.origins()
        starts = o - L + 1
        rec = ds.index.record_of(np.arange(len(ds)))
        rows = dm.store.records(split)
        lo, hi = idx["offset"][rows][rec], idx["offset"][rows][rec] + idx["length"][rows][rec]
        assert np.all(starts >= lo) and np.all(o + H < hi)  # inputs and targets inside one ticker-split record
        assert np.all(dm.ticker_of(starts) == dm.ticker_of(o + H))
        assert np.all(dates[o] < dates[o + 1])  # the last input day precedes the first target day
    # the embargo: >= lookback + horizon rows between a ticker's last train row and first val row
    for t in range(2):
        recs = {int(idx["split"][r]): r for r in np.flatnonzero(idx["ticker"] == t)}
        assert idx["offset"][recs[1]] - (idx["offset"][recs[0]] + idx["length"][recs[0]]) == L + H
        assert idx["offset"][recs[2]] - (idx["offset"][recs[1]] + idx["length"][recs[1]]) == L + H


def test_batch_targets_are_future_returns(two_tickers, tmp_path):
    for target in ("returns", "volatility"):
        dm = prepared(two_tickers, tmp_path, target=target, lookback=20, horizon=3)
        ds = dm.datasets["test"]
        scale = dm.meta["stocks"]["target_scale"]
        batch = dm.collate(ds.__getitems__([0, 5, len(ds) - 1]))
        assert batch["inputs"].shape == (3, 20, 4) and batch["targets"].shape == (3, 3)
        o = batch["origin"].numpy()
        r = np.asarray(dm.store.arrays["returns"], dtype=np.float64)
        fut = np.stack([r[i + 1 : i + 4] for i in o])
        want = fut if target == "returns" else np.sqrt(np.cumsum(fut**2, 1) / np.array([1, 2, 3]))
        assert np.allclose(batch["targets"].numpy() * scale, want, atol=1e-5)
        assert np.allclose(batch["inputs"][1].numpy(), np.asarray(dm.store.arrays["features"])[o[1] - 19 : o[1] + 1])
        assert dm.spec.output_dim == 3 and dm.spec.feature_dim == 4 and dm.spec.causal


def test_store_settings_mismatch_is_refused(two_tickers, tmp_path):
    prepared(two_tickers, tmp_path, lookback=20)
    dm = StockDataModule(
        source=str(two_tickers),
        prepared_dir=str(tmp_path / "prep"),
        lookback=30,
        horizon=3,
        features=["log_return", "hl_range", "volume_change", "realized_vol_5"],
        **SPLITS,
    )
    with pytest.raises(SeqpipeError, match=r"prep: prepared with lookback=20, this config asks for 30"):
        dm.setup()


# -- baselines, scores, models --------------------------------------------------------------
def test_score_exact_values():
    actual = np.array([[1.0, -2.0], [0.0, 3.0]])
    pred = np.array([[0.5, 1.0], [1.0, 0.0]])
    s = ev.score(pred, actual, "returns")
    assert s["test_mae"] == pytest.approx((0.5 + 3 + 1 + 3) / 4)
    assert s["test_rmse"] == pytest.approx(np.sqrt((0.25 + 9 + 1 + 9) / 4))
    assert s["test_dir_acc"] == pytest.approx((1 + 0 + 0.5) / 3)  # actual 0 left out; forecast 0 = half
    assert ev.mae_per_step(pred, actual) == [0.75, 3.0]
    assert ev.skill(0.9, 1.0) == pytest.approx(0.1) and ev.skill(1.2, 1.0) == pytest.approx(-0.2)


def test_baselines_match_their_definitions(two_tickers, tmp_path):
    from arch import arch_model

    dm = prepared(two_tickers, tmp_path, target="volatility")
    ds = dm.datasets["test"]
    garch = fit_garch(dm)
    assert set(garch) == {"AAA", "BBB"}
    b = baseline_forecasts(dm, ds, "volatility", garch, trailing_window=10)
    r = np.asarray(dm.store.arrays["returns"], dtype=np.float64)
    o = ds.origins()
    i = len(o) - 7
    t = o[i]
    assert b["trailing_rv"][i, 0] == pytest.approx(np.sqrt(np.mean(r[t - 9 : t + 1] ** 2)))
    assert b["persistence"][i, 2] == pytest.approx(np.sqrt(np.mean(r[t - 2 : t + 1] ** 2)))
    # GARCH(1,1) by hand: fit on train rows of the ticker, filter with fixed parameters, forecast
    tick = dm.ticker_of(np.array([t]))[0]
    info = dm.meta["stocks"]["tickers"][tick]
    mu, om, a, be = garch[info["ticker"]]
    series = r[info["offset"] : info["offset"] + info["rows"]]
    fixed = arch_model(series, mean="Constant", vol="GARCH", p=1, q=1, rescale=False).fix([mu, om, a, be])
    s2 = om + a * (series[t - info["offset"]] - mu) ** 2 + be * fixed.conditional_volatility[t - info["offset"]] ** 2
    s2_2 = om + (a + be) * s2
    assert b["garch11"][i, 0] == pytest.approx(np.sqrt(s2))
    assert b["garch11"][i, 1] == pytest.approx(np.sqrt((s2 + s2_2) / 2))
    # the GARCH fit saw train rows only: refit on those rows gives the same parameters
    train_rec = [rr for rr in dm.store.records("train") if dm.store.index["ticker"][rr] == tick][0]
    off, n = dm.store.index["offset"][train_rec], dm.store.index["length"][train_rec]
    refit = arch_model(r[off : off + n], mean="Constant", vol="GARCH", p=1, q=1, rescale=False).fit(disp="off")
    assert np.allclose(refit.params.values, garch[info["ticker"]])
    rb = baseline_forecasts(dm, ds, "returns", garch)
    assert (rb["zero"] == 0).all() and np.allclose(rb["persistence"][i], r[t])


def test_seed_group_members_are_independent(two_tickers, tmp_path):
    from seqpipe.models.seeds import SeedGroup

    dm = prepared(two_tickers, tmp_path)
    torch.manual_seed(5)
    g = SeedGroup(dm.spec.to_dict(), n_seeds=3, cell="gru", hidden_size=8, num_layers=1, loss="l1")
    assert g.hparams.member_seeds == [5, 6, 7]
    w = [m.core.rnn.weight_hh_l0 for m in g.members]
    assert not torch.equal(w[0], w[1])
    batch = dm.collate(dm.datasets["train"].__getitems__(list(range(8))))
    # gradient of the summed loss w.r.t. member 1 equals the gradient of member 1's own loss
    total = sum(m.loss_and_metrics(m(batch["inputs"])[0], batch["targets"])[0] for m in g.members)
    grads = torch.autograd.grad(total, list(g.members[1].parameters()))
    own = g.members[1].loss_and_metrics(g.members[1](batch["inputs"])[0], batch["targets"])[0]
    grads_own = torch.autograd.grad(own, list(g.members[1].parameters()))
    assert all(torch.allclose(a, b) for a, b in zip(grads, grads_own, strict=True))
    out = g.member_outputs(batch["inputs"])
    assert out.shape == (3, 8, 3) and torch.allclose(g(batch["inputs"])[0], out.mean(0))
    # same seeds -> same members (reproducible)
    g2 = SeedGroup(dm.spec.to_dict(), n_seeds=3, member_seeds=[5, 6, 7], cell="gru", hidden_size=8, num_layers=1)
    assert torch.equal(g2.members[2].core.rnn.weight_hh_l0, g.members[2].core.rnn.weight_hh_l0)


def test_bidirectional_refused_on_forecasting(two_tickers, tmp_path):
    from seqpipe.models import RecurrentModel

    dm = prepared(two_tickers, tmp_path)
    with pytest.raises(SeqpipeError, match="model.bidirectional"):
        RecurrentModel(dm.spec.to_dict(), bidirectional=True)


def test_predict_matches_the_datamodule_window(two_tickers, tmp_path):
    from seqpipe.models.seeds import SeedGroup

    dm = prepared(two_tickers, tmp_path, target="volatility")
    torch.manual_seed(0)
    model = SeedGroup(dm.spec.to_dict(), n_seeds=2, hidden_size=8, num_layers=1, data_info=dm.data_info())
    [res] = ev.predict(model, [str(two_tickers / "AAA.csv")])
    assert res["ticker"] == "AAA" and res["steps"] == [1, 2, 3] and res["target"] == "volatility"
    # the same forecast through the store: the window ending at AAA's last row
    info = dm.meta["stocks"]["tickers"][0]
    last = info["offset"] + info["rows"] - 1
    x = torch.from_numpy(np.asarray(dm.store.arrays["features"])[last - 19 : last + 1][None].copy())
    want = model(x)[0][0].detach().numpy() * dm.meta["stocks"]["target_scale"]
    assert np.allclose(res["forecast"], want, atol=1e-4)
    assert res["origin_date"] == str(dm.dates_of(np.array([last]))[0])
    short = write(tmp_path, "SHORT.csv", frame(15))
    with pytest.raises(SeqpipeError, match=r"SHORT\.csv: 15 rows; a forecast needs 20"):
        ev.predict(model, [str(short)])


def test_export_embedded_default_reads_back(tmp_path):
    from seqpipe.domains.stocks.source import export_embedded

    paths = export_embedded(tmp_path / "raw")
    assert sorted(p.name for p in paths) == ["AAPL.csv", "GOOG.csv", "IBM.csv", "MSFT.csv", "NASDAQ.csv", "SP500.csv"]
    series = {s.ticker: s for s in read_ohlcv(tmp_path / "raw")}
    assert len(series["SP500"]) == 5031 and str(series["SP500"].dates[0]) == "1999-01-04"
    assert len(series["AAPL"]) == 3270 and series["GOOG"].adj_close is not None
    assert all(not s.repairs for s in series.values())
    assert json.loads(json.dumps(Rules().__dict__)) == {
        "nonfinite": "drop",
        "unsorted": "sort",
        "duplicates": "error",
        "gaps": "error",
        "max_gap_days": 10,
        "date_format": None,
        "max_unsorted_rows": 5,
    }


# -- end to end (slow: imports Lightning and MLflow, trains) ----------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["lstm-volatility"])
def test_stock_pipeline_end_to_end(in_tmp, experiment):
    from seqpipe import stages
    from seqpipe.config import load_config
    from seqpipe.predict import predict

    raw = in_tmp / "raw"
    raw.mkdir()
    write(raw, "AAA.csv", frame(900, 0))
    write(raw, "BBB.csv", frame(850, 1, start="2004-02-02"))
    overrides = [
        f"data.init_args.source={raw}",
        "data.init_args.lookback=20",
        "data.init_args.horizon=3",
        f"data.init_args.val_start='{SPLITS['val_start']}'",
        f"data.init_args.test_start='{SPLITS['test_start']}'",
    ]  # quoted: YAML dates
    cfg = load_config(
        Path(__file__).resolve().parents[3] / "pipelines" / "stocks" / f"{experiment}.yaml", overrides, profile="fast"
    )
    stages.preprocess(cfg)
    stages.baselines(cfg)
    stages.fit(cfg)
    stages.evaluate(cfg)

    doc = json.loads((in_tmp / "reports" / f"stocks-{experiment}" / "evaluation.json").read_text())
    assert doc["primary_metric"] == "test_mae" and doc["direction"] == "lower"
    classic = {"persistence", "train_mean", "trailing_rv", "garch11"}
    assert set(doc["baselines"]) == classic | {"har_levels", "har_log", "har_log_range"}
    m = doc["model"]
    best = doc["best_baseline"]
    assert best == min(doc["baselines"], key=lambda b: doc["baselines"][b]["test_mae"])
    assert doc["margin"]["vs"] == best == doc["diebold_mariano"]["vs"]
    lo, hi = doc["margin"]["ci95"]
    assert lo <= doc["margin"]["value"] <= hi
    assert doc["margin"]["value"] == pytest.approx(m["test_mae"] - doc["baselines"][best]["test_mae"])
    first = doc["best_baseline_by_test_mae"]  # skill_vs_best: the best before HAR, as it always was
    assert first == min(classic, key=lambda b: doc["baselines"][b]["test_mae"])
    assert m["skill_vs_best"] == pytest.approx(1 - m["test_mae"] / doc["baselines"][first]["test_mae"])
    assert list(m)[-1] == "skill_vs_har_log_range" and "test_qlike" in m and "test_qlike" in doc["baselines"][best]
    assert len(doc["seeds"]) == 2 and len(doc["per_seed"]) == 2  # the fast profile trains 2 seeds
    assert m["test_mae"] == pytest.approx(np.mean([s["test_mae"] for s in doc["per_seed"]]))
    steps = doc["test_mae_per_step"]
    assert len(steps["model"]) == 3 and len(steps["garch11"]) == 3
    base = json.loads((in_tmp / "reports" / "baselines" / "stocks.json").read_text())
    assert base["by_target"]["volatility"]["garch11"]["test_mae"] == pytest.approx(
        doc["baselines"]["garch11"]["test_mae"]
    )
    assert (in_tmp / "reports" / f"stocks-{experiment}" / "forecast.png").stat().st_size > 1000
    rows = (in_tmp / "reports" / f"stocks-{experiment}" / "forecast.csv").read_text().splitlines()
    assert rows[0] == "date,actual,model,persistence,train_mean,trailing_rv,garch11" and len(rows) > 50

    [res] = predict(str(in_tmp / "models" / f"stocks-{experiment}" / "best.ckpt"), [str(raw / "BBB.csv")], echo=False)
    assert res["ticker"] == "BBB" and len(res["forecast"]) == 3 and all(v >= 0 for v in res["forecast"])


def test_forecast_scores_like_the_stock_domain_and_clips_negative_volatility(two_tickers, tmp_path):
    """evaluation/forecast.py scores through evaluation/stocks.py: a forecaster that undershoots 0 is clipped
    and counted there too (it once re-implemented the scoring and scored the raw negative forecasts)."""
    from seqpipe.domains.forecast import task as forecast
    from seqpipe.models.seq2seq import Seq2Seq

    dm = prepared(two_tickers, tmp_path, target="volatility")
    torch.manual_seed(0)
    m = Seq2Seq(dm.spec.to_dict(), cell="gru", hidden_size=8, attention="none", data_info=dm.data_info()).eval()
    with torch.no_grad():
        m.out.bias.fill_(-3.0)  # every forecast far below zero
    seeds, actual, clipped = ev.model_forecasts(m, dm, {})
    assert clipped == seeds.size and (seeds == 0).all()
    out = forecast.evaluate(m, dm, {"evaluate": {}}, {}, tmp_path)
    assert out.model["negative_vol_forecasts_clipped"] == clipped
    assert out.model["test_mae"] == pytest.approx(ev.score(np.zeros_like(actual), actual, "volatility")["test_mae"])
    assert {"har_levels", "har_log", "har_log_range"} <= set(out.baselines) and "test_qlike" in out.model
    best = min(out.baselines, key=lambda b: out.baselines[b]["test_mae"])
    assert out.margin["vs"] == best == out.extra["diebold_mariano"]["vs"]
    assert out.margin["value"] == pytest.approx(out.model["test_mae"] - out.baselines[best]["test_mae"])
    assert out.margin["ci95"][0] <= out.margin["value"] <= out.margin["ci95"][1]


def test_ols_recovers_known_har_coefficients():
    """Synthetic HAR data, y_h = b0 + b1 RV_1 + b2 RV_5 + b3 RV_22 + noise, one set of b a horizon step."""
    from seqpipe.domains.stocks.har import ols

    rng = np.random.default_rng(0)
    x = rng.lognormal(0.0, 0.5, size=(5000, 3))
    true = np.array([[0.1, 0.3], [0.2, 0.1], [0.3, 0.35], [0.4, 0.5]])  # (1 + k, H)
    y = np.hstack([np.ones((5000, 1)), x]) @ true + rng.normal(0, 0.01, size=(5000, 2))
    assert np.allclose(ols(x, y), true, atol=0.005)


def test_har_regressors_fit_and_choice(two_tickers, tmp_path):
    from seqpipe.domains.stocks import har

    dm = prepared(two_tickers, tmp_path, target="volatility")
    r = np.asarray(dm.store.arrays["returns"], dtype=np.float64)
    test = dm.datasets["test"]
    o = test.origins()
    i = len(o) - 5
    t = o[i]
    x = har.regressors(dm, o, with_range=True)
    hl = har.range_feature(dm)
    expect = [abs(r[t]), np.sqrt(np.mean(r[t - 4 : t + 1] ** 2)), np.sqrt(np.mean(r[t - 21 : t + 1] ** 2))]
    assert np.allclose(x[i], [*expect, hl[t], hl[t - 4 : t + 1].mean()])
    assert hl.min() >= 0 and abs(hl.mean() - 0) > 1e-3  # un-normalized: percent ranges, not z-scores
    fits = har.fit_har(dm)
    assert list(fits) == ["har_levels", "har_log", "har_log_range"]
    for f in fits.values():  # the pooling with the lower val MAE is the one used
        assert f["pooling"] == min(f["val_mae"], key=f["val_mae"].get)
    # the pooled log fit is OLS of log targets on log regressors over the train windows, its forecast exp(fit)
    train = dm.make_dataset("train")
    tx = np.log(np.maximum(har.regressors(dm, train.origins(), False), har.LOG_FLOOR))
    ty = np.log(np.maximum(make_targets(train.future_returns(train.origins()), "volatility"), har.LOG_FLOOR))
    coef = np.linalg.lstsq(np.hstack([np.ones((len(tx), 1)), tx]), ty, rcond=None)[0]
    assert np.allclose(fits["har_log"]["_fits"]["pooled"], coef)
    fits["har_log"]["pooling"] = "pooled"
    pred = har.har_forecasts(dm, test, fits)["har_log"]
    lx = np.log(np.maximum(har.regressors(dm, o, False), har.LOG_FLOOR))
    assert np.allclose(pred, np.exp(np.hstack([np.ones((len(lx), 1)), lx]) @ coef))
    assert set(har.har_report(fits)["har_log"]) == {"pooling", "val_mae", "coef"}
    # no hl_range feature: no range variant
    dm2 = prepared(two_tickers, tmp_path / "b", target="volatility", features=["log_return", "realized_vol_5"])
    assert list(har.fit_har(dm2)) == ["har_levels", "har_log"]


def test_variance_losses_exact_values():
    from seqpipe.domains.stocks.scoring import VARIANCE_FLOOR, variance_losses

    actual, pred = np.array([[1.0, 2.0]]), np.array([[2.0, 2.0]])
    out = variance_losses(pred, actual)
    assert out["test_mse_var"] == pytest.approx((9.0 + 0.0) / 2)
    assert out["test_qlike"] == pytest.approx((0.25 - np.log(0.25) - 1 + 0.0) / 2)
    zero = variance_losses(np.zeros((1, 1)), np.ones((1, 1)))  # a forecast of 0: guarded, finite, large
    ratio = 1.0 / VARIANCE_FLOOR
    assert zero["test_qlike"] == pytest.approx(ratio - np.log(ratio) - 1)


def test_stock_evaluate_adds_har_losses_margin_and_dm_after_the_old_numbers(two_tickers, tmp_path):
    from seqpipe.models.seeds import SeedGroup

    dm = prepared(two_tickers, tmp_path, target="volatility")
    torch.manual_seed(0)
    m = SeedGroup(dm.spec.to_dict(), n_seeds=2, cell="gru", hidden_size=4, data_info=dm.data_info()).eval()
    out = ev.evaluate(m, dm, {"evaluate": {"trailing_window": 10}}, {}, tmp_path)
    keys = list(out.model)
    assert keys[: keys.index("skill_vs_best_std") + 1] == [
        *("test_mae", "test_mae_std", "test_rmse", "test_rmse_std", "ensemble_test_mae", "ensemble_test_rmse"),
        *("skill_vs_best", "skill_vs_persistence", "skill_vs_train_mean", "skill_vs_trailing_rv", "skill_vs_garch11"),
        "skill_vs_best_std",
    ]  # the numbers there were before HAR, in their order; the new ones after
    assert keys[keys.index("skill_vs_best_std") + 1 :] == [
        *("test_mse_var", "test_mse_var_std", "test_qlike", "test_qlike_std"),
        *("ensemble_test_mse_var", "ensemble_test_qlike", "skill_vs_har_levels", "skill_vs_har_log"),
        "skill_vs_har_log_range",
    ]
    classic = ("persistence", "train_mean", "trailing_rv", "garch11")
    assert out.extra["best_baseline_by_test_mae"] == min(classic, key=lambda b: out.baselines[b]["test_mae"])
    best = min(out.baselines, key=lambda b: out.baselines[b]["test_mae"])
    margin, dm_test = out.margin, out.extra["diebold_mariano"]
    assert margin["vs"] == dm_test["vs"] == best and dm_test["lags"] == 2  # horizon 3: h - 1 lags
    assert margin["value"] == pytest.approx(out.model["test_mae"] - out.baselines[best]["test_mae"])
    assert margin["ci95"][0] <= margin["value"] <= margin["ci95"][1]
    assert 0 <= dm_test["p_value"] <= 1 and np.sign(dm_test["statistic"]) == np.sign(margin["value"])
    assert list(out.extra_section())[-1] == "margin"
    returns = prepared(two_tickers, tmp_path / "r", target="returns")
    rm = SeedGroup(returns.spec.to_dict(), n_seeds=1, cell="gru", hidden_size=4, data_info=returns.data_info())
    r_out = ev.evaluate(rm.eval(), returns, {"evaluate": {}}, {}, tmp_path)
    assert set(r_out.baselines) == {"zero", "persistence", "train_mean"}  # no HAR for returns
    assert r_out.margin["ci95"][0] <= r_out.margin["value"] <= r_out.margin["ci95"][1]


# -- the preprocessing settings, declared once ------------------------------------------------
def test_stock_settings_are_the_one_list_of_what_a_store_is_prepared_with(two_tickers, tmp_path):
    """StockSettings' fields (the rules' flattened) are the datamodule's store arguments with their defaults and
    the keys the settings check compares; the same fields, the embargo resolved and the rules nested, are the
    fingerprint's parameters."""
    import inspect
    import json
    from dataclasses import fields

    from seqpipe.data.store import fingerprint
    from seqpipe.domains.stocks.settings import StockSettings

    settings = {f.name: f.default for f in fields(StockSettings) if f.name != "rules"}
    flat = {**settings, **{f.name: f.default for f in fields(Rules)}}
    params = inspect.signature(StockDataModule.__init__).parameters
    assert {name: params[name].default for name in flat} == flat
    dm = prepared(two_tickers, tmp_path, gaps="keep")
    assert dm.settings.rules == Rules(gaps="keep") and dm.rules is dm.settings.rules
    assert list(dm.preprocessing_settings()) == list(flat)
    assert dm.store.meta["settings"] == dm.preprocessing_settings()
    extra = dm.settings.fingerprint_extra()
    assert list(extra) == [name for name in [f.name for f in fields(StockSettings)] if name != "source"]
    assert json.dumps(extra, sort_keys=True) == (  # the parameters every stocks store has been fingerprinted with
        '{"embargo": 23, "features": ["log_return", "hl_range", "volume_change", "realized_vol_5"], "horizon": 3, '
        '"lookback": 20, "price_column": "auto", "rules": {"date_format": null, "duplicates": "error", "gaps": '
        '"keep", "max_gap_days": 10, "max_unsorted_rows": 5, "nonfinite": "drop", "unsorted": "sort"}, '
        '"short_series": "error", "test_start": "2007-01-01", "val_start": "2006-01-01"}'
    )
    assert dm.store.meta["fingerprint"] == fingerprint(sorted(two_tickers.glob("*.csv")), extra=extra)
