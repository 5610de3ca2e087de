"""The evaluation kit's bootstrap intervals of a paired margin, on inputs whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from seqpipe.errors import SeqpipeError
from seqpipe.evaluation.bootstrap import moving_block_bootstrap, paired_bootstrap


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
