"""fit.ema_decay: the exponential moving average of the weights that validation, best.ckpt and the published model use.

The average must be the textbook one (e_1 = w_1, e_k = d e_{k-1} + (1 - d) w_k over the weights after each update,
d**N a time when updated every N steps), must not change the training trajectory it averages, and the checkpoint
must keep both (the raw weights for resuming, the average for everything downstream)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from torch import nn

from helpers import text_experiment, write_corpus
from seqpipe.callbacks import WeightEMA
from seqpipe.cli import main
from seqpipe.errors import SeqpipeError


class Toy(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self.lin(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Record(L.Callback):
    """The raw weights after every optimizer step (before any averaging callback swaps them)."""

    def __init__(self):
        self.seen: list[torch.Tensor] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seen.append(pl_module.lin.weight.detach().clone())


@pytest.mark.parametrize("every", [1, 3])
def test_the_average_is_the_textbook_ema(every: int):
    torch.manual_seed(0)
    x = torch.randn(40, 3)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x @ torch.tensor([[1.0], [-2.0], [0.5]])))
    record, ema = Record(), WeightEMA(0.8, every)
    model = Toy()
    trainer = L.Trainer(
        max_steps=20,
        callbacks=[record, ema],
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, data)
    expected = None
    for step, w in enumerate(record.seen):
        if step % every:
            continue
        expected = w.clone() if expected is None else 0.8**every * expected + (1 - 0.8**every) * w
    assert len(record.seen) == 20
    assert not torch.allclose(expected, record.seen[-1])  # the average is not simply the last weights
    torch.testing.assert_close(model.lin.weight, expected)  # copied into the model when training ends


@pytest.mark.parametrize("decay, every", [(1.0, 1), (0, 1), ("high", 1), (0.9, 0), (0.9, 2.5)])
def test_bad_settings_are_refused(decay, every):
    with pytest.raises(SeqpipeError, match="fit.ema_"):
        WeightEMA(decay, every, where="x.yaml")


def test_text_fit_publishes_the_average_and_trains_the_same_weights(in_tmp: Path):
    write_corpus(in_tmp, 4000)
    base = {
        **text_experiment("prep", seq_len=16, batch_size=8, cell="lstm", hidden_size=16, num_layers=1, embedding_dim=8),
        "seed": 3,
        "trainer": {
            "max_steps": 60,
            "val_check_interval": 30,
            "limit_val_batches": 2,
            "accelerator": "cpu",
            "enable_progress_bar": False,
        },
        "fit": {"grad_every_n_steps": 1000},
    }
    for name, fit in (("raw", {}), ("avg", {"ema_decay": 0.9})):
        cfg = {**base, "name": name, "fit": {**base["fit"], **fit}}
        (in_tmp / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
        assert main(["fit", "--config", f"{name}.yaml"]) == 0
    raw = torch.load(in_tmp / "models/raw/last.ckpt", map_location="cpu", weights_only=False)
    avg = torch.load(in_tmp / "models/avg/last.ckpt", map_location="cpu", weights_only=False)
    for k, w in raw["state_dict"].items():  # averaging never feeds back into training
        assert torch.equal(avg["current_model_state"][k], w), k
    assert any(not torch.equal(avg["state_dict"][k], w) for k, w in raw["state_dict"].items())
    best = torch.load(in_tmp / "models/avg/best.ckpt", map_location="cpu", weights_only=False)
    from seqpipe.models import RecurrentModel

    published = RecurrentModel.load_from_checkpoint(in_tmp / "models/avg/best.ckpt", map_location="cpu")
    for k, w in published.state_dict().items():  # what evaluate and MLflow load is the average
        assert torch.equal(w, best["state_dict"][k]), k
