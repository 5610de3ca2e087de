"""Hashed n-gram embeddings: the n-gram identity as an input, carried across windows with the state."""

import pytest
import torch

from seqpipe.callbacks import hidden_gradient_norms
from seqpipe.data.spec import DataSpec
from seqpipe.domains.text.datamodule import Vocabulary
from seqpipe.domains.text.generate import generate
from seqpipe.errors import SeqpipeError
from seqpipe.models import CRNN, RecurrentModel
from seqpipe.models.ngram_embedding import HashedNgrams

LM = DataSpec(input="tokens", target="next_token", vocab_size=11, causal=True).to_dict()
CLS = DataSpec(input="features", target="class", feature_dim=8, num_classes=3).to_dict()


def lm(cell: str = "lstm", **kw) -> RecurrentModel:
    torch.manual_seed(0)
    return RecurrentModel(LM, cell=cell, hidden_size=16, embedding_dim=8, ngram_orders=[2, 3, 5], **kw).eval()


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("width", [1, 5])  # one token at a time (generation), windows shorter than an n-gram
def test_a_stream_read_in_windows_scores_as_one_window(cell, width):
    """The history carried in the state gives a window's first steps the n-grams reaching into the last one."""
    m = lm(cell)
    x = torch.randint(0, 11, (3, 24))
    whole, _ = m(x)
    state, parts = None, []
    for lo in range(0, 24, width):
        out, state = m(x[:, lo : lo + width], state=state)
        parts.append(out)
    assert torch.allclose(torch.cat(parts, dim=1), whole, atol=1e-5)
    assert state[-1].tolist() == x[:, -4:].tolist()  # the last max(order) - 1 tokens


def test_history_reaches_the_first_steps_only_through_the_ngrams():
    m = lm()
    x = torch.randint(0, 11, (2, 6))
    zeros = torch.zeros(2, 2, 16)  # 2 layers, 2 lanes
    blank, _ = m(x, state=(zeros, zeros, m.ngrams.empty_history(2)))
    assert torch.allclose(blank, m(x)[0])  # no state = zero state and an empty history
    other, _ = m(x, state=(zeros, zeros, torch.ones(2, 4, dtype=torch.long)))
    assert not torch.allclose(blank[:, 0], other[:, 0])  # step 0's bigram now reads token 1
    assert not torch.allclose(blank[:, 5], other[:, 5])  # past the n-grams' reach the LSTM state carries it on


def test_buckets_are_a_fixed_function_of_the_ngram():
    """Integer hashing: the same rows on every machine, equal n-grams on one row, the order in the hash."""
    h = HashedNgrams(vocab_size=60, out_dim=8, orders=[2, 3, 8], buckets=16384, dim=4)
    x = torch.tensor([[5, 7, 9, 5, 7, 9, 5, 7, 9, 5, 7]])
    bigrams, trigrams, eightgrams = (r[0].tolist() for r in h.bucket_ids(x))
    assert bigrams[1] == bigrams[4] == bigrams[7] == bigrams[10]  # "5 7" each time
    assert len(set(bigrams[1:])) == 3 and len(set(trigrams[2:])) == 3
    assert eightgrams[7] == eightgrams[10]  # "5 7 9 5 7 9 5 7" both times
    assert eightgrams[6] != eightgrams[9]  # the same 7 tokens, but one reaches before the stream's start
    assert bigrams[0] != trigrams[0]  # the order is part of the hash even where history pads both
    assert [bigrams[10], trigrams[10], eightgrams[10]] == [13277, 3193, 10866]  # fixed for every machine
    assert [bigrams[10], trigrams[10], eightgrams[10]] == [reference_row(x[0].tolist()[::-1], n) for n in (2, 3, 8)]


def reference_row(back: list[int], n: int, vocab: int = 60, buckets: int = 16384) -> int:
    """The hash in plain Python ints with int64 wrap-around; back[0] is the n-gram's last token."""

    def s64(v: int) -> int:
        v &= (1 << 64) - 1
        return v - (1 << 64) if v >= 1 << 63 else v

    ids = 0
    for k in range(n):
        ids = s64(ids * (vocab + 1) + back[k])
    h = s64((ids + n) * 6364136223846793005)
    return (h ^ (h >> 31)) % buckets


def test_refused_where_it_does_not_apply():
    with pytest.raises(SeqpipeError, match="between 2 and 16"):
        RecurrentModel(LM, ngram_orders=[1, 2])
    with pytest.raises(SeqpipeError, match="token inputs"):
        RecurrentModel(CLS, ngram_orders=[2, 3])
    with pytest.raises(SeqpipeError, match="ngram_orders"):
        CRNN(LM | {"target": "class", "num_classes": 2}, ngram_orders=[2])


def test_training_generation_and_gradient_replay_use_the_ngrams():
    m = lm(lr=0.01, lr_schedule="none").train()
    opt = m.configure_optimizers()
    x = torch.randint(0, 11, (4, 33))
    batch = {"inputs": x[:, :-1], "targets": x[:, 1:]}
    losses = []
    for _ in range(100):
        opt.zero_grad()
        loss = m.training_step(batch, 0)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert all(t.weight.grad.abs().sum() > 0 for t in m.ngrams.tables)
    norms = hidden_gradient_norms(m, batch)
    assert norms.shape == (32,) and torch.isfinite(norms).all()
    vocab = Vocabulary(["<unk>", *"abcdefghij"])
    a = generate(m.eval(), vocab, "abc", length=30, seed=3)
    assert a == generate(m, vocab, "abc", length=30, seed=3) and len(a) == 33


def test_ngram_dropout_drops_rows_in_training_only_and_keeps_the_mean():
    torch.manual_seed(0)
    h = HashedNgrams(vocab_size=60, out_dim=8, orders=[2, 3], dropout=0.5)
    for t in h.tables:
        torch.nn.init.normal_(t.weight, std=1.0)
    x = torch.randint(0, 60, (2, 5))
    full = h.eval()(x)
    assert torch.equal(full, h(x))
    h.train()
    draws = torch.stack([h(x) for _ in range(4000)])
    bias = h.proj.bias
    assert (draws - bias).abs().amax(-1).eq(0).any()  # both orders dropped at some step: only the bias is left
    assert torch.allclose(draws.mean(0), full, atol=0.1)  # kept rows scaled by 1 / (1 - p): unbiased
    with pytest.raises(SeqpipeError, match="ngram_dropout"):
        HashedNgrams(vocab_size=60, out_dim=8, orders=[2], dropout=1.0)


def test_fused_optimizer_trains_like_the_default_under_lightning_clipping_and_bf16():
    """One fused AdamW kernel (the tables' millions of parameters) is the same update as torch's loop."""
    import lightning as L

    def run(fused: bool) -> list[torch.Tensor]:
        m = lm(lr=0.01, warmup_steps=1, fused_optimizer=fused).train()
        x = torch.randint(0, 11, (32, 17), generator=torch.Generator().manual_seed(1))
        data = torch.utils.data.DataLoader([{"inputs": r[:-1], "targets": r[1:]} for r in x], batch_size=4)
        trainer = L.Trainer(
            max_steps=8,
            gradient_clip_val=0.5,
            precision="bf16-mixed",
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
        )
        trainer.fit(m, data)
        assert isinstance(trainer.optimizers[0], torch.optim.AdamW)
        assert trainer.optimizers[0].defaults["fused"] is (True if fused else None)
        return [p.detach().clone() for p in m.parameters()]

    start = [p.detach().clone() for p in lm().parameters()]
    fused, default = run(True), run(False)
    assert any(not torch.equal(a, b) for a, b in zip(start, fused, strict=True))  # it trained
    for a, b in zip(fused, default, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(SeqpipeError, match="fused_optimizer needs adamw"):
        lm(optimizer="rmsprop", fused_optimizer=True).configure_optimizers()


def test_input_skip_feeds_the_head_the_step_inputs_and_only_for_per_step_targets():
    m = lm(input_skip=True)
    assert m.head.in_features == 16 + 8  # the core's output and the embedding (+ n-grams)
    x = torch.randint(0, 11, (2, 12))
    whole, _ = m(x)
    state, parts = None, []
    for lo in range(0, 12, 3):
        out, state = m(x[:, lo : lo + 3], state=state)
        parts.append(out)
    assert torch.allclose(torch.cat(parts, dim=1), whole, atol=1e-5)
    norms = hidden_gradient_norms(m, {"inputs": x[:, :-1], "targets": x[:, 1:]})  # the replay feeds the head both
    assert norms.shape == (11,) and torch.isfinite(norms).all() and norms[-1] > 0
    with torch.no_grad():  # zero the core's half of the head: the logits are a function of the step's input alone
        m.head.weight[:, :16] = 0
    a, _ = m(torch.tensor([[1, 2, 3, 4, 5, 6, 7]]))
    b, _ = m(torch.tensor([[9, 9, 3, 4, 5, 6, 7]]))
    assert torch.allclose(a[0, 6], b[0, 6]) and not torch.allclose(a[0, 5], b[0, 5])  # 5-grams reach back 4
    with pytest.raises(SeqpipeError, match="input_skip needs a per-step target"):
        RecurrentModel(CLS, input_skip=True)
