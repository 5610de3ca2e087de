"""Fill-in-the-blank masking: whole words inside the margins, deterministic eval masks, no leakage, baselines."""

import numpy as np
import pytest

from seqpipe.domains.fill_blank.datamodule import IGNORE, FillBlankDataModule, Masker
from seqpipe.domains.fill_blank.task import blanks, ngram_scores, scores_from_logp
from seqpipe.domains.text.ngram import KneserNeyLM
from seqpipe.errors import SeqpipeError

WORDS = "i am so very hungry that i could eat a horse and then some more of the bread we have here . "


@pytest.fixture
def dm(in_tmp):
    (in_tmp / "corpus.txt").write_text(WORDS * 60)
    d = FillBlankDataModule(
        source="corpus.txt",
        prepared_dir="prep",
        seq_len=32,
        spans=2,
        margin=4,
        max_span=8,
        val_fraction=0.2,
        test_fraction=0.2,
        batch_size=8,
    )
    d.prepare_data()
    d.setup()
    return d


def test_masks_are_whole_words_inside_the_margins(dm):
    vocab = dm.text_vocab
    ds = dm.datasets["val"]
    for i in range(len(ds)):
        x, y = ds[i]
        m = y != IGNORE
        assert 1 <= m.sum() and (x[m] == dm.mask_id).all() and (x[~m] != dm.mask_id).all()
        s = ds.start(i)
        window = np.asarray(dm.store.arrays["tokens"][s : s + 32])
        assert (y[m] == window[m]).all()
        spans = ds.spans(i)
        assert 1 <= len(spans) <= 2
        for a, n in spans:
            assert a >= 4 and a + n <= 28 and n <= 8
            word = "".join(vocab[t] for t in window[a : a + n])
            assert word.isalpha() and word in WORDS.split()
            assert not vocab[window[a - 1]].isalpha() and not vocab[window[a + n]].isalpha()  # the whole word
    assert dm.spec.vocab_size == len(vocab) + 1 and dm.spec.target == "masked_token" and not dm.spec.causal


def test_eval_masks_are_deterministic_and_train_masks_vary(dm, in_tmp):
    ds = dm.datasets["test"]
    first = [ds[i][1].copy() for i in range(len(ds))]
    again = [ds[i][1] for i in range(len(ds))]
    other = FillBlankDataModule(
        source="corpus.txt",
        prepared_dir="prep",
        seq_len=32,
        spans=2,
        margin=4,
        max_span=8,
        val_fraction=0.2,
        test_fraction=0.2,
    )
    other.setup()
    fresh = [other.datasets["test"][i][1] for i in range(len(ds))]
    assert all((a == b).all() and (a == c).all() for a, b, c in zip(first, again, fresh, strict=True))
    tr = dm.datasets["train"]  # training blanks: fresh each epoch, a function of (seed, epoch, window)
    draws = {tuple(tr.draw(0, np.random.default_rng([0, epoch, 0]))[1]) for epoch in range(10)}
    assert len(draws) > 1
    assert (tr.draw(0, np.random.default_rng([0, 3, 0]))[1] == tr.draw(0, np.random.default_rng([0, 3, 0]))[1]).all()


def test_windows_stay_inside_their_split(dm):
    idx = dm.store.index
    for split in ("train", "val", "test"):
        r = dm.store.records(split)[0]
        lo, hi = int(idx["offset"][r]), int(idx["offset"][r] + idx["length"][r])
        ds = dm.datasets[split]
        starts = [ds.start(i) for i in range(len(ds))]
        assert min(starts) >= lo and max(starts) + 32 <= hi


def test_char_unit_spans_and_bad_configs(in_tmp):
    m = Masker(np.arange(3, 10), unit="char", spans=3, min_span=2, max_span=4, margin=5)
    rng = np.random.default_rng(0)
    for _ in range(50):
        spans = m.choose(np.arange(40) % 12, rng)
        assert len(spans) == 3
        for (a, n), (b, _) in zip(spans, spans[1:], strict=False):
            assert 2 <= n <= 4 and a >= 5 and b > a + n  # disjoint, a visible gap between blanks
    with pytest.raises(SeqpipeError, match="mask unit"):
        Masker(np.arange(3), unit="sentence")
    with pytest.raises(SeqpipeError, match="data.level"):
        FillBlankDataModule(level="word")
    with pytest.raises(SeqpipeError, match="data.seq_len"):
        FillBlankDataModule(seq_len=10, margin=5)


def test_ngram_left_context_baseline(dm):
    tokens = np.asarray(dm.store.arrays["tokens"])
    lm = KneserNeyLM(4, len(dm.text_vocab)).fit(np.asarray(dm.split_tokens("train")))
    starts, lengths, _ = blanks(dm.datasets["test"])
    allowed = np.array([t.isalpha() for t in dm.text_vocab])
    one = lengths == 1  # a one-letter blank: peeking at earlier blank letters changes nothing
    a = ngram_scores(lm, 4, tokens, starts[one], lengths[one], oracle=True, allowed=allowed)
    b = ngram_scores(lm, 4, tokens, starts[one], lengths[one], oracle=False, allowed=allowed)
    assert a == b and a["test_masked_chars"] == one.sum()
    oracle = ngram_scores(lm, 4, tokens, starts, lengths, oracle=True, allowed=allowed)
    blind = ngram_scores(lm, 4, tokens, starts, lengths, oracle=False, allowed=allowed)
    # a repeated corpus: given the true earlier letters the 4-gram fills almost every letter (word starts
    # stay ambiguous); without them it must guess, and pays for it
    assert oracle["test_masked_acc"] > 0.85 and blind["test_bits_per_char"] > oracle["test_bits_per_char"]
    assert blind["test_masked_acc"] <= oracle["test_masked_acc"]


def test_scores_from_logp():
    s = scores_from_logp(np.log2([0.5, 0.25, 1.0, 0.5]), np.array([True, False, True, True]), np.array([0, 0, 1, 2]))
    assert s == {
        "test_masked_acc": 0.75,
        "test_bits_per_char": 1.0,
        "test_span_acc": 2 / 3,
        "test_masked_chars": 4.0,
        "test_blanks": 3.0,
    }


def test_the_text_settings_are_the_stores_settings(dm, in_tmp):
    """Fill-in-the-blank reads the text store: its preprocessing settings are TextSettings, with the text
    datamodule's defaults; its own arguments (masking, windows) are not settings of the store."""
    import inspect
    from dataclasses import fields

    from seqpipe.domains.text.settings import TextSettings

    defaults = {f.name: f.default for f in fields(TextSettings)}
    params = inspect.signature(FillBlankDataModule.__init__).parameters
    assert {name: params[name].default for name in defaults} == defaults
    assert dm.settings == TextSettings(source="corpus.txt", val_fraction=0.2, test_fraction=0.2)
    assert dm.preprocessing_settings() == dm.settings.recorded() == dm.store.meta["settings"]
    assert list(dm.preprocessing_settings()) == list(defaults)
    assert not {"unit", "spans", "margin", "seq_len", "stride"} & set(dm.preprocessing_settings())


def test_evaluate_writes_the_margin_against_the_best_baseline(dm, in_tmp):
    import torch

    from seqpipe.domains.fill_blank.task import baselines, evaluate
    from seqpipe.models import RecurrentModel

    torch.manual_seed(0)
    model = RecurrentModel(dm.spec.to_dict(), cell="lstm", hidden_size=8, bidirectional=True, data_info=dm.data_info())
    cfg = {"name": "t", "evaluate": {"ngram_max_order": 3}}
    base = baselines(dm, cfg)
    out = evaluate(model, dm, cfg, base, in_tmp)
    best = min(out.baselines, key=lambda b: out.baselines[b]["test_bits_per_char"])
    assert out.margin["vs"] == best and out.margin["units"] == out.model["test_masked_chars"]
    gap = out.model["test_bits_per_char"] - out.baselines[best]["test_bits_per_char"]
    assert out.margin["value"] == pytest.approx(gap) and out.margin["ci95"][0] <= gap <= out.margin["ci95"][1]
