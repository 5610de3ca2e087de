"""Kneser-Ney n-gram baseline: proper distributions and sensible numbers."""

import numpy as np
import pytest

from seqpipe.domains.text.ngram import KneserNeyLM
from seqpipe.errors import SeqpipeError


@pytest.fixture(scope="module")
def lm():
    rng = np.random.default_rng(0)
    text = np.array(list(b"the cat sat on the mat. " * 200), dtype=np.int64) % 32
    noise = rng.integers(0, 32, 500)
    return KneserNeyLM(5, 40).fit(np.concatenate([text, noise]))  # ids 32..39 never seen


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_conditionals_sum_to_one(lm, order):
    for ctx in ([], [5, 3, 1, 0], [39, 39, 39, 39], [20, 8, 5, 0]):
        p = lm.distribution(np.array(ctx, dtype=np.int64), order)
        assert p.sum() == pytest.approx(1.0, abs=1e-9)
        assert p.min() > 0  # unseen ids still get mass from the uniform floor


def test_higher_order_predicts_repetitive_text_better(lm):
    test = np.array(list(b"the cat sat on the mat. " * 20), dtype=np.int64) % 32
    bpc = [lm.bits_per_token(test, o) for o in (1, 2, 3, 5)]
    assert bpc == sorted(bpc, reverse=True)
    assert bpc[-1] < 0.5 < bpc[0]


def test_log_probs_use_only_the_stream_history(lm):
    test = np.array([1, 2, 3, 4, 5, 6], dtype=np.int64)
    a = lm.log2_probs(test, 5)
    b = lm.log2_probs(test[2:], 5)
    assert len(a) == 5
    assert a[-1] == pytest.approx(b[-1])  # position 5 sees at most 4 tokens back either way


def test_errors():
    with pytest.raises(SeqpipeError):
        KneserNeyLM(0, 10)
    with pytest.raises(SeqpipeError, match="shorter than order"):
        KneserNeyLM(5, 10).fit(np.array([1, 2]))


def test_mixture_bits_interpolate_between_model_and_ngram():
    from seqpipe.domains.text.mixture import mix_bits

    rng = np.random.default_rng(0)
    model_lp, ngram_lp = np.log2(rng.uniform(0.05, 1, 500)), np.log2(rng.uniform(0.05, 1, 500))
    assert mix_bits(model_lp, ngram_lp, 1.0) == pytest.approx(-model_lp.mean(), abs=1e-6)
    assert mix_bits(model_lp, ngram_lp, 0.0) == pytest.approx(-ngram_lp.mean(), abs=1e-6)
    # log of an average >= average of logs: the half mixture is never worse than the two halves' mean
    assert mix_bits(model_lp, ngram_lp, 0.5) <= 0.5 * (-model_lp.mean() - ngram_lp.mean()) + 1e-9
