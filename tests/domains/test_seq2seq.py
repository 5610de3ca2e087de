"""Seq2seq decoding (greedy vs beam, EOS stops), masking of padded frames, scheduled sampling, refusals."""

import pytest
import torch

from seqpipe.data.spec import BOS, EOS, PAD, DataSpec
from seqpipe.errors import SeqpipeError
from seqpipe.models.decoding import edit_distance, strip
from seqpipe.models.scheduled_sampling import teacher_forcing_ratio
from seqpipe.models.seq2seq import Seq2Seq

SEQ = DataSpec(input="features", target="sequence", feature_dim=8, num_classes=13).to_dict()
FORECAST = DataSpec(input="features", target="regression", feature_dim=5, output_dim=4, causal=True).to_dict()
CONFIGS = [
    dict(encoder=e, cell=c, attention=a, bidirectional=bi)
    for e, c, a, bi in [
        ("recurrent", "gru", "none", False),
        ("recurrent", "lstm", "luong", True),
        ("conv", "gru", "bahdanau", True),
        ("conv", "lstm", "luong", False),
        ("recurrent", "rnn", "bahdanau", False),
    ]
]


def model(**kw) -> Seq2Seq:
    torch.manual_seed(0)
    kw.setdefault("hidden_size", 16)
    kw.setdefault("conv_channels", (4, 8))
    kw.setdefault("max_decode_len", 6)
    return Seq2Seq(SEQ, **kw).eval()


@pytest.mark.parametrize("cfg", CONFIGS)
def test_beam_width_one_is_greedy(cfg):
    m = model(**cfg)
    torch.manual_seed(1)
    x, lengths = torch.randn(5, 24, 8), torch.tensor([24, 17, 9, 24, 12])
    greedy = m.greedy(x, lengths)
    assert greedy == m.beam_search(x, lengths, beam_width=1)
    assert all(len(h) <= 6 and all(3 <= t < 13 for t in h) for h in greedy)  # never PAD/BOS/EOS in an output


def test_beam_finds_a_sequence_at_least_as_likely_as_greedy():
    """Beam search maximizes the summed log probability: its pick never scores below greedy's."""
    m = model(attention="luong", bidirectional=True)
    torch.manual_seed(2)
    x = torch.randn(6, 20, 8)

    def logprob(ids):
        y = torch.tensor([*ids, EOS])[None]
        out = m.teacher_forced(x[i : i + 1], y, None, 1.0)
        lp = torch.log_softmax(out.index_fill(-1, torch.tensor([PAD, BOS]), float("-inf")), -1)
        return lp.gather(-1, y.unsqueeze(-1)).sum().item()

    greedy, beam = m.greedy(x), m.beam_search(x, beam_width=5)
    with torch.no_grad():
        for i in range(6):
            assert logprob(beam[i]) >= logprob(greedy[i]) - 1e-4


class ScriptedDecoder(Seq2Seq):
    """The real model with its output layer replaced by a script: step t emits script[t] (then EOS)."""

    def __init__(self, script, **kw):
        super().__init__(SEQ, hidden_size=8, attention="none", max_decode_len=10, **kw)
        self.script, self.calls = script, 0

    def step(self, emb, state, feed, enc):
        out, state, feed, w = super().step(emb, state, feed, enc)
        tok = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        logits = torch.full_like(out, -10.0)
        logits[:, tok] = 10.0
        return logits, state, feed, w


def test_end_token_stops_decoding():
    m = ScriptedDecoder([5, 7, EOS, 9, 9, 9]).eval()
    assert m.greedy(torch.randn(2, 10, 8)) == [[5, 7], [5, 7]]
    assert m.calls == 3  # decoding stopped at EOS: no further decoder steps
    m = ScriptedDecoder([5, 7, EOS, 9, 9, 9]).eval()
    assert m.beam_search(torch.randn(2, 10, 8), beam_width=3) == [[5, 7], [5, 7]]
    m = ScriptedDecoder([4]).eval()  # never emits EOS: cut at max_decode_len
    assert m.greedy(torch.randn(1, 10, 8)) == [[4] * 10]
    assert m.beam_search(torch.randn(1, 10, 8), beam_width=2) == [[4] * 10]


@pytest.mark.parametrize("cfg", CONFIGS)
def test_padded_frames_do_not_change_outputs(cfg):
    m = model(**cfg)
    torch.manual_seed(3)
    x = torch.randn(2, 32, 8)
    lengths = torch.tensor([32, 20])
    y = torch.tensor([[5, 6, 7, EOS], [8, 9, EOS, PAD]])
    a = m.teacher_forced(x, y, lengths)
    x2 = x.clone()
    x2[1, 20:] = 1e3  # garbage in sample 1's padding
    b = m.teacher_forced(x2, y, lengths)
    alone = m.teacher_forced(x[1:2, :20], y[1:2], None)
    assert torch.allclose(a, b, atol=1e-5)
    if cfg["encoder"] == "recurrent":  # packed: exactly as if the sample were alone in its batch
        assert torch.allclose(a[1], alone[0], atol=1e-4)
    assert m.beam_search(x, lengths, beam_width=3) == m.beam_search(x2, lengths, beam_width=3)


def test_padded_targets_carry_no_loss():
    m = model()
    out = torch.randn(2, 4, 13)
    y = torch.tensor([[5, 6, 7, EOS], [8, EOS, PAD, PAD]])
    loss, metrics = m.loss_and_metrics(out, y)
    y2 = y.clone()
    out2 = out.clone()
    out2[1, 2:] = torch.randn(2, 13) * 100  # predictions at padded targets are ignored
    assert torch.isclose(loss, m.loss_and_metrics(out2, y2)[0])
    valid = y != PAD
    assert metrics["token_acc"].item() == pytest.approx(((out.argmax(-1) == y) & valid).sum().item() / 6)


@pytest.mark.slow
def test_learns_to_copy_and_reverse_with_attention():
    """A real learning check: transcribe a sequence of one-hot frames into its ids, reversed."""
    torch.manual_seed(0)
    spec = DataSpec(input="tokens", target="sequence", vocab_size=10, num_classes=13).to_dict()
    m = Seq2Seq(
        spec,
        cell="gru",
        hidden_size=48,
        embedding_dim=16,
        attention="luong",
        bidirectional=True,
        lr=0.01,
        lr_schedule="none",
        max_decode_len=6,
    )
    opt = m.configure_optimizers()
    for _ in range(300):
        x = torch.randint(0, 10, (32, 5))
        y = torch.cat([x.flip(1) + 3, torch.full((32, 1), EOS)], dim=1)
        loss, _ = m.loss_and_metrics(m.teacher_forced(x, y), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    x = torch.randint(0, 10, (50, 5))
    want = [(r.flip(0) + 3).tolist() for r in x]
    hyps = m.beam_search(x, beam_width=3)
    assert sum(h == w for h, w in zip(hyps, want, strict=True)) >= 45


def test_forecast_decodes_every_step_from_its_own_output():
    torch.manual_seed(0)
    m = Seq2Seq(FORECAST, cell="lstm", hidden_size=8, attention="bahdanau").eval()
    x = torch.randn(3, 30, 5)
    out, _ = m(x)
    assert out.shape == (3, 4)
    targets = out.detach().clone()
    # teacher forcing with the model's own outputs as "truth" reproduces free-running decoding
    assert torch.allclose(m.teacher_forced(x, targets, None, 1.0)[..., 0], out, atol=1e-5)


def test_teacher_forcing_schedules():
    assert teacher_forcing_ratio(0, 1.0, 0.5, "linear", 100) == 1.0
    assert teacher_forcing_ratio(50, 1.0, 0.5, "linear", 100) == pytest.approx(0.75)
    assert teacher_forcing_ratio(500, 1.0, 0.5, "linear", 100) == 0.5
    assert teacher_forcing_ratio(100, 1.0, 0.25, "exponential", 100) == pytest.approx(0.25)
    assert teacher_forcing_ratio(50, 1.0, 0.0, "inverse_sigmoid", 100) == pytest.approx(0.5)
    assert teacher_forcing_ratio(999, 0.9, 0.1, "none", 100) == 0.9


def test_scheduled_sampling_feeds_own_predictions():
    m = model(attention="none")
    x = torch.randn(4, 12, 8)
    y = torch.tensor([[5, 6, 7, EOS]] * 4)
    torch.manual_seed(0)
    forced = m.teacher_forced(x, y, None, 1.0)
    free = m.teacher_forced(x, y, None, 0.0)
    assert torch.allclose(forced[:, 0], free[:, 0])  # the first step reads BOS either way
    greedy_first = forced[:, 0].argmax(-1)
    if not torch.equal(greedy_first, y[:, 0]):  # differing inputs -> differing later outputs
        assert not torch.allclose(forced[:, 1], free[:, 1])


def test_refusals():
    with pytest.raises(SeqpipeError, match="bidirectional.*causal"):
        Seq2Seq(FORECAST, bidirectional=True)
    with pytest.raises(SeqpipeError, match="attention"):
        Seq2Seq(SEQ, attention="dot-product")
    with pytest.raises(SeqpipeError, match="beam_width"):
        Seq2Seq(SEQ, beam_width=0)
    with pytest.raises(SeqpipeError, match="teacher_forcing"):
        Seq2Seq(SEQ, teacher_forcing=0.5, min_teacher_forcing=0.8)
    with pytest.raises(SeqpipeError, match="Seq2Seq decodes"):
        Seq2Seq(DataSpec(input="features", target="class", feature_dim=3, num_classes=2).to_dict())


def test_edit_distance_and_strip():
    assert edit_distance("417", "417") == 0
    assert edit_distance("417", "4170") == 1
    assert edit_distance("417", "47") == 1
    assert edit_distance("", "123") == 3
    assert strip(torch.tensor([[5, 6, EOS, 7], [PAD, 5, 5, 5], [3, 4, 5, 6]])) == [[5, 6], [], [3, 4, 5, 6]]
