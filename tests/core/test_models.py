"""Model shapes, learning, refusal of leaky configs, gradients through time, generation."""

import json

import pytest
import torch

from seqpipe.callbacks import hidden_gradient_norms
from seqpipe.data.spec import DataSpec
from seqpipe.domains.text.datamodule import Vocabulary
from seqpipe.domains.text.generate import generate
from seqpipe.errors import SeqpipeError
from seqpipe.models import CRNN, RecurrentModel, Seq2Seq

LM = DataSpec(input="tokens", target="next_token", vocab_size=11, causal=True).to_dict()
CLS = DataSpec(input="features", target="class", feature_dim=8, num_classes=3).to_dict()
REG = DataSpec(input="features", target="regression", feature_dim=4, output_dim=5, causal=True).to_dict()


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_shapes_for_every_target(cell):
    m = RecurrentModel(LM, cell=cell, hidden_size=16, num_layers=2, embedding_dim=8)
    logits, _ = m(torch.randint(0, 11, (3, 7)))
    assert logits.shape == (3, 7, 11)
    m = RecurrentModel(CLS, cell=cell, hidden_size=16, pooling="attention")
    out, _ = m(torch.randn(3, 9, 8), torch.tensor([9, 4, 1]))
    assert out.shape == (3, 3)
    m = RecurrentModel(REG, cell=cell, hidden_size=16)
    assert m(torch.randn(2, 6, 4))[0].shape == (2, 5)


def test_padding_does_not_change_pooled_output():
    torch.manual_seed(0)
    for pooling in ("last", "mean", "attention"):
        m = RecurrentModel(CLS, cell="gru", hidden_size=16, pooling=pooling).eval()
        x = torch.randn(2, 10, 8)
        lengths = torch.tensor([10, 6])
        a, _ = m(x, lengths)
        x[1, 6:] = 1e3  # garbage in the padded frames of sample 1
        b, _ = m(x, lengths)
        alone, _ = m(x[1:2, :6])
        assert torch.allclose(a, b, atol=1e-6)
        assert torch.allclose(a[1], alone[0], atol=1e-5)


def test_bidirectional_refused_on_causal_tasks():
    with pytest.raises(SeqpipeError, match="bidirectional.*causal"):
        RecurrentModel(LM, bidirectional=True)
    with pytest.raises(SeqpipeError, match="bidirectional"):
        RecurrentModel(REG, bidirectional=True)
    RecurrentModel(CLS, bidirectional=True)  # classification may read both ways


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_overfits_one_batch(cell):
    torch.manual_seed(0)
    m = RecurrentModel(LM, cell=cell, hidden_size=32, embedding_dim=16, lr=0.01, lr_schedule="none")
    opt = m.configure_optimizers()
    x = torch.randint(0, 11, (4, 21))
    batch = {"inputs": x[:, :-1], "targets": x[:, 1:]}
    first = None
    for _ in range(150):
        loss, _ = m.loss_and_metrics(m(batch["inputs"])[0], batch["targets"])
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > 2.0 and loss.item() < 0.3 * first


def test_crnn_is_recurrent_model_blocks_on_a_conv_front_end():
    """RecurrentModel's arguments reach the CRNN as they are (no copy to keep in step), configs are checked
    against them, and the parameter names stay those of every CRNN checkpoint so far."""
    from pathlib import Path

    from seqpipe.config import load_config

    m = CRNN(CLS, conv_channels=(4,), hidden_size=8, pooling="attention", label_smoothing=0.1)
    assert m.hparams.cell == "gru" and m.hparams.label_smoothing == 0.1  # the CRNN's default, a RecurrentModel option
    bn = [f"front.blocks.1.{k}" for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
    core = [f"core.rnn.{k}_l0" for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    assert list(m.state_dict()) == [
        *("front.blocks.0.weight", "front.blocks.0.bias", *bn, *core),
        *("pool.score.weight", "pool.score.bias", "head.weight", "head.bias"),
    ]
    again = CRNN(**dict(m.hparams))  # what load_from_checkpoint does with the saved hyperparameters
    assert dict(again.hparams) == dict(m.hparams)
    again.load_state_dict(m.state_dict())
    with pytest.raises(SeqpipeError, match="one_hot"):
        CRNN(CLS, one_hot=True)
    crnn_yaml = Path(__file__).parents[2] / "pipelines/audio/crnn.yaml"
    with pytest.raises(SeqpipeError, match="did you mean 'model.init_args.hidden_size'"):
        load_config(crnn_yaml, ["model.init_args.hiden_size=3"])
    assert (
        load_config(crnn_yaml, ["model.init_args.label_smoothing=0.1"])["model"]["init_args"]["label_smoothing"] == 0.1
    )


def test_crnn_shapes_and_padding():
    torch.manual_seed(0)
    m = CRNN(CLS, conv_channels=(4, 8), freq_pool=2, time_pool=2, hidden_size=8).eval()
    out, _ = m(torch.randn(3, 20, 8), torch.tensor([20, 12, 3]))
    assert out.shape == (3, 3)
    dna = DataSpec(input="tokens", target="class", vocab_size=5, num_classes=2).to_dict()
    m = CRNN(dna, conv_channels=(8,), kernel_size=9, time_pool=4, cell="lstm", bidirectional=True)
    assert m(torch.randint(0, 5, (2, 64)))[0].shape == (2, 2)
    with pytest.raises(SeqpipeError, match="CRNN"):
        CRNN(LM)


def test_gradient_through_time_vanishes_faster_for_vanilla_rnn():
    """The blog's claim as a number: at init, dL_T/dh_1 / dL_T/dh_T is far smaller for a tanh RNN."""
    torch.manual_seed(0)
    x = torch.randint(0, 11, (16, 61))
    batch = {"inputs": x[:, :-1], "targets": x[:, 1:]}
    ratio = {}
    for cell in ("rnn", "lstm"):
        torch.manual_seed(1)
        m = RecurrentModel(LM, cell=cell, hidden_size=32, embedding_dim=8)
        g = hidden_gradient_norms(m, batch)
        assert g.shape == (60,) and torch.all(g > 0)
        ratio[cell] = (g[0] / g[-1]).item()
    assert ratio["rnn"] < 1e-3 * ratio["lstm"]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gradient_replay_through_fused_cells_equals_the_module_step_by_step(cell):
    """The replay steps torch's fused cell functions (8x cheaper than nn.LSTM one step a call): same curve."""
    torch.manual_seed(0)
    x = torch.randint(0, 11, (8, 31))
    batch = {"inputs": x[:, :-1], "targets": x[:, 1:]}
    m = RecurrentModel(LM, cell=cell, hidden_size=16, num_layers=2, embedding_dim=8, dropout=0.0)
    with torch.enable_grad():  # the reference: the module itself, one step a call
        z = m.front(batch["inputs"])
        state, hs = None, []
        for t in range(z.shape[1]):
            _, state = m.core.rnn(z[:, t : t + 1], state)
            hs.append(state[0] if isinstance(state, tuple) else state)
        loss = torch.nn.functional.cross_entropy(m.head(hs[-1][-1]), batch["targets"][:, -1])
        grads = torch.autograd.grad(loss, hs)
    reference = torch.stack([g.norm(dim=-1).mean() for g in grads])
    torch.testing.assert_close(hidden_gradient_norms(m, batch), reference.detach(), rtol=1e-4, atol=1e-12)


def test_generation_is_reproducible_and_respects_top_k():
    torch.manual_seed(0)
    vocab = Vocabulary(["<unk>", *"abcdefghij"])
    m = RecurrentModel(LM, hidden_size=16, embedding_dim=8)
    a = generate(m, vocab, "abc", length=40, seed=3)
    b = generate(m, vocab, "abc", length=40, seed=3)
    c = generate(m, vocab, "abc", length=40, seed=4)
    assert a == b and a != c and a.startswith("abc") and len(a) == 43
    greedy = generate(m, vocab, "abc", length=20, top_k=1, seed=5)
    assert greedy == generate(m, vocab, "abc", length=20, top_k=1, seed=6)  # top-1 is deterministic
    with pytest.raises(SeqpipeError, match="temperature"):
        generate(m, vocab, "abc", temperature=0)


def test_cosine_schedule_is_a_function_of_the_step_alone():
    """trainer.max_time is a guard, never the schedule: the LR at each step is the same however slow the
    steps are, and decays over max_steps."""
    import time

    import lightning as L

    def run(sleep: float) -> list[float]:
        torch.manual_seed(0)
        m = RecurrentModel(LM, hidden_size=8, embedding_dim=4, warmup_steps=1, lr=0.002)
        lrs = []

        class Record(L.Callback):
            def on_train_batch_end(self, trainer, *args):
                lrs.append(trainer.optimizers[0].param_groups[0]["lr"])
                time.sleep(sleep)

        x = torch.randint(0, 11, (64, 9))
        data = torch.utils.data.DataLoader([{"inputs": r[:-1], "targets": r[1:]} for r in x], batch_size=2)
        trainer = L.Trainer(
            max_steps=40,
            max_time={"seconds": 600},
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[Record()],
            accelerator="cpu",
        )
        trainer.fit(m, data)
        return lrs

    fast, slow = run(0.0), run(0.02)
    assert fast == slow and len(fast) == 40
    assert fast[0] > 0.0019 and fast[-1] < 0.00025  # floor is 10% of lr, reached at max_steps
    assert all(a >= b for a, b in zip(fast, fast[1:], strict=False))


def test_precision_auto_is_measured_on_this_machine_and_cached(monkeypatch, tmp_path):
    from seqpipe import precision, trainer, training

    monkeypatch.setenv("SEQPIPE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(training.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    spec = DataSpec(input="tokens", target="next_token", vocab_size=20, causal=True).to_dict()
    cfg = {"trainer": {"precision": "auto"}, "data": {"init_args": {"batch_size": 4, "seq_len": 8}}}
    measured = []

    def fake_measure(model, batch, seq_len):
        measured.append((model.hparams.cell, batch, seq_len))
        return {"lstm": 0.6, "gru": 0.95, "rnn": 0.8999}[model.hparams.cell]

    monkeypatch.setattr(precision, "measure", fake_measure)
    models = {c: RecurrentModel(spec, cell=c, hidden_size=8, num_layers=1) for c in ("rnn", "lstm", "gru")}
    pick = {c: trainer._trainer_kwargs(cfg, m)["precision"] for c, m in models.items()}
    # bf16 only where clearly faster (< 0.9x, and a fresh measurement outside the noise band around it): near a
    # tie the exact 32-bit wins
    assert pick == {"rnn": "32-true", "lstm": "bf16-mixed", "gru": "32-true"}
    assert measured == [("rnn", 4, 8), ("lstm", 4, 8), ("gru", 4, 8)]
    cache = json.loads((tmp_path / "precision.json").read_text())
    assert sorted(v for k, v in cache.items() if not k.startswith("choice|")) == [0.6, 0.8999, 0.95]
    assert sorted(v for k, v in cache.items() if k.startswith("choice|")) == ["32-true", "32-true", "bf16-mixed"]
    # a rerun on this machine reads the cache: no new measurement, the same choice
    assert trainer._trainer_kwargs(cfg, models["gru"])["precision"] == "32-true" and len(measured) == 3
    # another window is another measurement
    trainer._trainer_kwargs({**cfg, "data": {"init_args": {"batch_size": 4, "seq_len": 16}}}, models["gru"])
    assert len(measured) == 4
    # another width is another model: measured anew
    wider = RecurrentModel(spec, cell="gru", hidden_size=16, num_layers=1)
    trainer._trainer_kwargs(cfg, wider)
    assert len(measured) == 5
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: False)  # no oneDNN bf16: emulated, slower
    assert trainer._trainer_kwargs(cfg, models["lstm"])["precision"] == "32-true" and len(measured) == 5
    monkeypatch.setattr(training.torch.cuda, "is_available", lambda: True)  # a GPU: bf16
    assert trainer._trainer_kwargs(cfg, models["rnn"])["precision"] == "bf16-mixed"
    monkeypatch.setattr(training.torch.cuda, "is_available", lambda: False)
    assert trainer._trainer_kwargs({"trainer": {}})["precision"] == "32-true"
    with pytest.raises(SeqpipeError, match="needs the model"):
        trainer._trainer_kwargs(cfg)


def test_precision_probe_trains_a_copy_and_leaves_the_model_and_rng_alone():
    from seqpipe import precision

    for spec, cell in [
        (DataSpec(input="tokens", target="next_token", vocab_size=20, causal=True), "gru"),
        (DataSpec(input="features", target="regression", feature_dim=3, output_dim=2), "lstm"),
        (DataSpec(input="tokens", target="class", vocab_size=5, num_classes=3), "rnn"),
    ]:
        model = RecurrentModel(spec.to_dict(), cell=cell, hidden_size=8, num_layers=2, dropout=0.1)
        weights = {k: v.clone() for k, v in model.state_dict().items()}
        torch.manual_seed(3)
        before = torch.get_rng_state()
        ratio = precision.measure(model, batch=2, seq_len=5, rounds=1)
        assert torch.equal(torch.get_rng_state(), before)  # a cache hit and a fresh probe train alike
        assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())  # the step ran on a copy
        assert all(p.grad is None for p in model.parameters())
        assert 0 < ratio < 100
    # bf16 is timed under the very autocast Lightning's bf16-mixed trains in (its weight-cache setting included)
    from lightning.pytorch.plugins.precision import MixedPrecision

    def autocast_state():
        return torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"), torch.is_autocast_cache_enabled()

    with precision.bf16_forward_context():
        probed = autocast_state()
    with MixedPrecision("bf16-mixed", "cpu").forward_context():
        assert probed == autocast_state() and probed[:2] == (True, torch.bfloat16)
    # a model the probe cannot feed (sequence targets) stays in exact 32-bit, saying why
    seq = Seq2Seq(DataSpec(input="features", target="sequence", feature_dim=4, num_classes=7).to_dict(), hidden_size=8)
    assert precision.choose(seq, batch=2, seq_len=5)["precision"] == "32-true"


# -- pooling "flatten" (DanQ/DeepSplice head for fixed-length, position-anchored tasks) ---------
DNA60 = DataSpec(input="tokens", target="class", vocab_size=5, num_classes=3, max_len=60).to_dict()


def test_crnn_flatten_pooling_shapes_and_head_size():
    from seqpipe.models.core import TimePooling

    m = CRNN(
        DNA60,
        conv_channels=[8],
        kernel_size=9,
        time_pool=[2],
        hidden_size=4,
        bidirectional=True,
        pooling="flatten",
        data_info={"length": {"min": 60, "max": 60}},
    ).eval()
    assert isinstance(m.pool, TimePooling) and m.pool.steps == 30  # 60 bp, max-pool 2
    assert m.head.in_features == 30 * 8  # 30 steps x BiLSTM(4) both directions
    x = torch.randint(1, 5, (3, 60))
    out, _ = m(x, torch.full((3,), 60))
    assert out.shape == (3, 3)
    assert torch.allclose(out, m(x)[0])
    m = CRNN(DNA60, conv_channels=[8], kernel_size=8, time_pool=[3], hidden_size=4, pooling="flatten")
    assert m.pool.steps == 61 // 3 and m(torch.randint(1, 5, (2, 60)))[0].shape == (2, 3)  # even kernel: 61 steps
    r = RecurrentModel(DNA60, cell="gru", hidden_size=4, one_hot=True, pooling="flatten")
    assert r.head.in_features == 60 * 4 and r(torch.randint(1, 5, (2, 60)))[0].shape == (2, 3)


def test_precision_probe_feeds_a_flattening_head_its_fixed_length(monkeypatch, tmp_path):
    from seqpipe import precision

    monkeypatch.setenv("SEQPIPE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    m = CRNN(DNA60, conv_channels=[8], time_pool=[2], hidden_size=4, pooling="flatten")
    # the data's training window (64) is not what the head was built for (60): the probe must not use it
    choice = precision.choose(m, batch=2, seq_len=64)
    ratio = choice["bf16_over_32bit"]  # a fresh measurement decides by the margin, 32-bit inside the band below it
    bf16 = ratio < precision.BF16_MARGIN - precision.BF16_BAND
    assert ratio > 0 and choice["precision"] == ("bf16-mixed" if bf16 else "32-true")
    key = next(k for k in json.loads((tmp_path / "precision.json").read_text()) if not k.startswith("choice|"))
    assert json.loads(key)["seq_len"] == 60


def test_crnn_flatten_pooling_refuses_varying_lengths_with_the_fix():
    with pytest.raises(SeqpipeError, match="same length.*from 40 to 60") as e:
        CRNN(DNA60, conv_channels=[8], pooling="flatten", data_info={"length": {"min": 40, "max": 60}})
    assert "pooling: mean" in str(e.value)
    with pytest.raises(SeqpipeError, match="fixed sequence length"):
        CRNN(CLS, conv_channels=[8], pooling="flatten")  # a spec with no max_len
    m = CRNN(DNA60, conv_channels=[8], time_pool=[2], hidden_size=4, pooling="flatten").eval()
    with pytest.raises(SeqpipeError, match="exactly 30 steps.*got 25"):
        m(torch.randint(1, 5, (2, 50)))  # another length than trained on (e.g. a predict query)
    with pytest.raises(SeqpipeError, match=r"exactly 30 steps.*got \[20, 30\]"):
        m(torch.randint(1, 5, (2, 60)), torch.tensor([60, 40]))  # a padded (shorter) sample in the batch
    CRNN(DNA60, conv_channels=[8], pooling="mean", data_info={"length": {"min": 40, "max": 60}})  # mean: fine


def test_flatten_pooling_keeps_position_mean_pooling_does_not():
    from seqpipe.models.core import TimePooling

    torch.manual_seed(0)
    out = torch.randn(2, 6, 4)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    last = torch.zeros(2, 4)
    mean, flat = TimePooling(4, "mean"), TimePooling(4, "flatten", steps=6)
    assert torch.allclose(mean(out, None, last), mean(out[:, perm], None, last), atol=1e-6)
    assert flat(out, None, last).shape == (2, 24)
    assert not torch.allclose(flat(out, None, last), flat(out[:, perm], None, last))
    # a CRNN head reads where a motif sits: the same bases moved along the sequence give another output
    m = CRNN(DNA60, conv_channels=[8], time_pool=[2], hidden_size=4, bidirectional=True, pooling="flatten").eval()
    x = torch.randint(1, 5, (1, 60))
    shifted = torch.roll(x, 10, dims=1)
    assert not torch.allclose(m(x)[0], m(shifted)[0], atol=1e-4)


def test_crnn_label_smoothing_touches_the_training_loss_only():
    import torch.nn.functional as F

    torch.manual_seed(0)
    m = CRNN(DNA60, conv_channels=[8], hidden_size=4, pooling="flatten", label_smoothing=0.1).eval()
    out, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    smoothed, _ = m.loss_and_metrics(out, y, m.hparams.label_smoothing)
    plain, _ = m.loss_and_metrics(out, y)  # what val/test log
    assert torch.allclose(smoothed, F.cross_entropy(out, y, label_smoothing=0.1))
    assert torch.allclose(plain, F.cross_entropy(out, y)) and not torch.allclose(plain, smoothed)


def test_every_target_kind_is_declared_once_and_sizes_its_head() -> None:
    """One table (seqpipe.data.spec.TARGETS) says how each target kind trains: the head's size comes from the
    field it names, and a spec missing that field is refused."""
    import pytest

    from seqpipe.data.spec import TARGETS, DataSpec, TargetKind
    from seqpipe.models.core import make_head

    assert set(TARGETS) == set(TargetKind.__args__)
    sizes = {"vocab_size": 11, "num_classes": 5, "output_dim": 3}
    for target, kind in TARGETS.items():
        spec = DataSpec(input="tokens", target=target, vocab_size=11, num_classes=5, output_dim=3)
        assert make_head(spec, 8).out_features == sizes[kind.head]
        with pytest.raises(ValueError, match=kind.head):
            DataSpec(
                input="features", feature_dim=4, target=target, **{f: v for f, v in sizes.items() if f != kind.head}
            )
    with pytest.raises(ValueError, match="target must be one of"):
        DataSpec(input="tokens", vocab_size=3, target="tokens")
