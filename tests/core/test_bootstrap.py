"""The evaluation kit's bootstrap intervals of a paired margin, on inputs whose answer is known."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from seqpipe.errors import SeqpipeError
from seqpipe.evaluation.bootstrap import (
    long_block_bootstrap,
    moving_block_bootstrap,
    paired_bootstrap,
    statistic_bootstrap,
)
from seqpipe.evaluation.diebold_mariano import diebold_mariano, newey_west_variance
from seqpipe.evaluation.margin import unit_margin, verdict


def test_constant_margin_has_a_zero_width_interval():
    model, baseline = np.arange(10.0) + 0.25, np.arange(10.0)
    iv = paired_bootstrap(model, baseline, np.random.default_rng(0))
    assert (iv.mean, iv.low, iv.high, iv.level) == (0.25, 0.25, 0.25, 0.95)


def test_paired_interval_matches_normal_theory_and_is_seeded():
    d = np.tile([0.0, 1.0], 200)  # mean 0.5, standard error 0.5 / sqrt(400) = 0.025
    iv = paired_bootstrap(d, np.zeros_like(d), np.random.default_rng(1), resamples=4000)
    assert iv.mean == 0.5
    assert iv.low == pytest.approx(0.5 - 1.96 * 0.025, abs=0.006)
    assert iv.high == pytest.approx(0.5 + 1.96 * 0.025, abs=0.006)
    again = paired_bootstrap(d, np.zeros_like(d), np.random.default_rng(1), resamples=4000)
    assert again == iv
    assert paired_bootstrap(d, np.zeros_like(d), np.random.default_rng(2), resamples=4000) != iv


def test_paired_resamples_the_differences_not_each_side():
    # the model beats the baseline by exactly 1 on every unit, however different the units are
    baseline = np.random.default_rng(3).normal(0, 10, 50)
    iv = paired_bootstrap(baseline + 1, baseline, np.random.default_rng(0))
    assert iv.low == pytest.approx(1.0) and iv.high == pytest.approx(1.0)


def test_block_of_one_is_the_paired_bootstrap():
    rng = np.random.default_rng(4)
    m, b = rng.normal(size=60), rng.normal(size=60)
    assert moving_block_bootstrap(m, b, np.random.default_rng(5), block=1) == paired_bootstrap(
        m, b, np.random.default_rng(5)
    )


def test_blocks_widen_the_interval_of_a_correlated_series():
    d = np.repeat(np.random.default_rng(6).choice([-1.0, 1.0], 20), 25)  # 500 units in runs of 25
    iid = paired_bootstrap(d, np.zeros_like(d), np.random.default_rng(7))
    blocks = moving_block_bootstrap(d, np.zeros_like(d), np.random.default_rng(7), block=25)
    assert blocks.mean == iid.mean
    assert (blocks.high - blocks.low) > 3 * (iid.high - iid.low)  # ~sqrt(25) wider
    assert blocks.low < iid.mean < blocks.high


def test_bad_inputs_are_named():
    with pytest.raises(SeqpipeError, match="one length"):
        paired_bootstrap(np.zeros(3), np.zeros(4), np.random.default_rng(0))
    with pytest.raises(SeqpipeError, match="block must lie in 1..3"):
        moving_block_bootstrap(np.zeros(3), np.zeros(3), np.random.default_rng(0), block=4)


# -- the margin block, its verdict and the Diebold-Mariano test -----------------------------------
def test_long_block_bootstrap_draws_what_the_moving_block_one_draws():
    rng = np.random.default_rng(8)
    m, b = rng.normal(size=503), rng.normal(size=503)  # 503 = 25 blocks of 20 and one cut to 3
    a = moving_block_bootstrap(m, b, np.random.default_rng(9), block=20)
    c = long_block_bootstrap(m, b, np.random.default_rng(9), block=20)
    assert c.mean == a.mean and c.low == pytest.approx(a.low, abs=1e-12) and c.high == pytest.approx(a.high, abs=1e-12)


def test_statistic_bootstrap_recomputes_on_each_resample_and_skips_undefined_ones():
    x = np.arange(40.0)
    iv = statistic_bootstrap(lambda idx: float(x[idx].max() - x[idx].min()), 40, np.random.default_rng(0), 500)
    assert iv.mean == 39.0 and iv.low < 39.0 and iv.high == 39.0
    nan_half = statistic_bootstrap(
        lambda idx: float("nan") if idx[0] % 2 else 1.0, 10, np.random.default_rng(0), resamples=200
    )
    assert (nan_half.low, nan_half.high) == (1.0, 1.0)


def test_unit_margin_block_is_seeded_and_holds_its_point():
    rng = np.random.default_rng(10)
    m, b = rng.normal(1.0, 1.0, 300), rng.normal(1.2, 1.0, 300)
    one = unit_margin(m, b, "base", unit="clip")
    assert one == unit_margin(m, b, "base", unit="clip")  # seeded: the same block twice
    assert one["value"] == pytest.approx(m.mean() - b.mean()) and one["ci95"][0] <= one["value"] <= one["ci95"][1]
    assert (one["vs"], one["units"], one["block"], one["resamples"], one["seed"]) == ("base", 300, 1, 2000, 0)
    blocks = unit_margin(m, b, "base", unit="day", block=30, note="30 days")
    assert blocks["block"] == 30 and blocks["note"] == "30 days"


@pytest.mark.parametrize(
    "ci, direction, expected",
    [
        ([-0.3, -0.1], "lower", "better"),  # model - baseline < 0 on a loss: better
        ([0.1, 0.3], "lower", "worse"),
        ([-0.1, 0.2], "lower", "tie"),  # straddles 0
        ([0.1, 0.3], "higher", "better"),
        ([-0.3, -0.1], "higher", "worse"),
        ([-0.1, 0.0], "higher", "tie"),  # touches 0: not clearly worse
        ([float("nan"), float("nan")], "higher", "tie"),
    ],
)
def test_verdict(ci, direction, expected):
    assert verdict({"ci95": ci}, direction) == expected


def test_summary_says_better_worse_or_tie_from_the_interval(tmp_path):
    from seqpipe.summary import summary

    def doc(name, model, ci):
        return {
            "experiment": name,
            "domain": "d",
            "primary_metric": "test_mae",
            "direction": "lower",
            "model": {"test_mae": model},
            "baselines": {"b": {"test_mae": 1.0}},
            "best_baseline": "b",
            "margin": {"vs": "b", "value": model - 1.0, "ci95": ci},
        }

    for d in (doc("x-better", 0.8, [-0.3, -0.1]), doc("y-tie", 0.95, [-0.1, 0.02]), doc("z-worse", 1.2, [0.1, 0.3])):
        (tmp_path / f"{d['experiment']}.json").write_text(json.dumps(d))
    rows = summary(tmp_path, tmp_path / "s.md", files=sorted(tmp_path.glob("*.json"))).splitlines()
    assert rows[0].endswith("| margin | margin 95% CI | model is |")
    assert rows[2].endswith("| b | 1.0000 | +0.2000 | [+0.1000, +0.3000] | better |")
    assert rows[3].endswith("| +0.0500 | [-0.0200, +0.1000] | tie |")
    assert rows[4].endswith("| -0.2000 | [-0.3000, -0.1000] | worse |")


def test_diebold_mariano_on_a_known_case():
    d = np.array([1.0, -1.0, 2.0, 0.0, 3.0])  # mean 1, deviations 0 -2 1 -1 2
    # lag 0: variance of the mean = (0+4+1+1+4)/5 / 5 = 0.4
    dm0 = diebold_mariano(d, np.zeros(5), lags=0)
    assert dm0.statistic == pytest.approx(1 / np.sqrt(0.4)) and dm0.n == 5
    assert dm0.p_value == pytest.approx(2 * (1 - 0.5 * (1 + math.erf(dm0.statistic / np.sqrt(2)))))
    # lag 1 (h = 2): gamma_1 = (0*-2 + -2*1 + 1*-1 + -1*2) / 5 = -1, Bartlett weight 1/2
    assert newey_west_variance(d, 1) == pytest.approx((2.0 + 2 * 0.5 * -1.0) / 5)
    dm1 = diebold_mariano(d + 5, np.full(5, 5.0), lags=1)
    assert dm1.statistic == pytest.approx(1 / np.sqrt(0.2)) and dm1.lags == 1 and dm1.mean_difference == 1.0
    same = diebold_mariano(np.ones(4), np.ones(4), lags=1)
    assert np.isnan(same.statistic) and np.isnan(same.p_value)  # no difference: no test
    with pytest.raises(SeqpipeError, match="Diebold-Mariano"):
        diebold_mariano(np.ones(3), np.ones(4), lags=1)
