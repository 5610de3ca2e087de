"""Gradients through time: ||dL_T / dh_t|| for t = 1..T, so vanishing/exploding gradients show.

Every ``every_n_steps`` training steps the callback takes a few samples of the current batch,
replays the recurrence one step at a time through the model's own fused core (same weights),
and asks autograd for the gradient of the loss at the last step with respect to every hidden
state h_t. A vanilla RNN's curve falls by orders of magnitude from t = T back to t = 1; an
LSTM's or GRU's stays flatter. That is the blog's central claim, as a number and a curve.

Logged to MLflow under ``zz_grad_through_time/`` (seqpipe.runlog): ``at_step_<step>`` a sample point with MLflow
step = t, ``log10_ratio_first_to_last`` (``grad_h_log10_ratio``) = log10(||dL/dh_1|| / ||dL/dh_T||) against
training step, and at the end of training ``grad_through_time.csv`` + ``.png`` artifacts (``grad_final.csv``
holds the last curve alone, which dvc.yaml plots for RNN vs LSTM vs GRU).

Beside it: the learning-rate and learning-curve loggers, and WeightEMA (``fit.ema_decay``).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import WeightAveraging
from torch.optim.swa_utils import get_ema_multi_avg_fn

from seqpipe.errors import SeqpipeError
from seqpipe.io import write_text as atomic_write_text
from seqpipe.models.core import logging_step
from seqpipe.tracking_guard import guard_of


def _cell_step(rnn: torch.nn.RNNBase, x: torch.Tensor, state: list) -> list:
    """One time step of a fused nn.RNN/LSTM/GRU through torch's fused cell functions, layer by layer.

    The same weights and the same arithmetic as the module's own step (within float rounding), cheaper than
    calling the module one step at a time, which sets up its fused kernel on every call (the whole LSTM replay
    2.6x cheaper, benchmarks/probes/grad_replay.md). ``state`` holds, per
    layer, h (RNN/GRU) or (h, c) (LSTM); the new state is returned. Its h tensors are views: the gradient with
    respect to them is the gradient through the recurrence (and the head), not through the layer above at the same
    step -- what the module-per-step replay measured, where that happened inside one call.
    """
    new = []
    inp = x
    for layer in range(rnn.num_layers):
        w = [getattr(rnn, f"{n}_l{layer}") for n in ("weight_ih", "weight_hh")]
        b = [getattr(rnn, f"{n}_l{layer}") for n in ("bias_ih", "bias_hh")] if rnn.bias else [None, None]
        if isinstance(rnn, torch.nn.LSTM):
            h, c = torch.lstm_cell(inp, state[layer], *w, *b)
            new.append((h.view_as(h), c))
        else:
            cell = torch.gru_cell if isinstance(rnn, torch.nn.GRU) else _RNN_CELLS[rnn.nonlinearity]
            h = cell(inp, state[layer], *w, *b)
            new.append(h.view_as(h))
        inp = h
        if rnn.dropout and rnn.training and layer < rnn.num_layers - 1:  # between layers, as the module does
            inp = F.dropout(inp, rnn.dropout, training=True)
    return new


_RNN_CELLS = {"tanh": torch.rnn_tanh_cell, "relu": torch.rnn_relu_cell}


def hidden_gradient_norms(model: Any, batch: dict[str, torch.Tensor], max_samples: int = 16) -> torch.Tensor:
    """||dL_T/dh_t|| (mean over layers and samples) for t = 0..T-1 of a unidirectional core."""
    inputs = batch["inputs"][:max_samples]
    targets = batch["targets"][:max_samples]
    lengths = batch.get("lengths")
    if lengths is not None:  # use equal-length prefixes so "the last step" is well defined
        inputs = inputs[:, : int(lengths[:max_samples].min())]
    was_training = model.training
    model.train()
    rnn = model.core.rnn
    with torch.enable_grad():
        x = model.front(inputs)
        if hasattr(model, "add_ngrams"):  # the hashed n-gram features training adds (no history)
            x = model.add_ngrams(x, inputs)
        zeros = x.new_zeros(x.shape[0], rnn.hidden_size)
        lstm = isinstance(rnn, torch.nn.LSTM)
        state = [(zeros, zeros) if lstm else zeros for _ in range(rnn.num_layers)]
        hs = []  # every layer's h_t, t = 0..T-1
        for t in range(x.shape[1]):
            state = _cell_step(rnn, x[:, t], state)
            hs.append([s[0] if lstm else s for s in state])
        last = hs[-1][-1]  # top layer h_T (same values as out[:, -1], but on the state path)
        kind = model.spec.kind
        if kind.per_step:  # a next-token stream (the only per-step kind the replay traces)
            if hasattr(model, "head_input"):  # with input_skip the head also reads the step's input
                last = model.head_input(last, x[:, -1])
            loss = F.cross_entropy(model.head(last), targets[:, inputs.shape[1] - 1])
        elif kind.loss == "cross_entropy":
            loss = F.cross_entropy(model.head(last), targets)
        else:
            pred = model.head(last)
            loss = F.mse_loss(pred, targets.to(pred.dtype).reshape(pred.shape))
        flat = [h for layers in hs for h in layers]
        grads = torch.autograd.grad(loss, flat, allow_unused=True)
    model.train(was_training)
    n = rnn.num_layers
    norms = [
        torch.stack([g.norm(dim=-1) if g is not None else zeros.new_zeros(zeros.shape[0]) for g in grads[i : i + n]])
        for i in range(0, len(grads), n)
    ]
    return torch.stack([g.mean() for g in norms]).detach().cpu()


class GradientThroughTime(L.Callback):
    """Samples ||dL_T/dh_t|| during training; see the module docstring.

    Args:
        every_n_steps: sample period in optimizer steps.
        max_samples: samples of the batch used (the replay is a Python loop over time steps).
        out_dir: where the CSV and PNG go (also logged as MLflow artifacts).
        title: the plot's title (the experiment's name; default: out_dir's name).
    """

    def __init__(self, every_n_steps: int = 100, max_samples: int = 16, out_dir: str | Path = "reports", title=""):
        self.title = title or Path(out_dir).name
        self.every_n_steps = every_n_steps
        self.max_samples = max_samples
        self.out_dir = Path(out_dir)
        self.rows: list[tuple[int, int, float]] = []

    def state_dict(self) -> dict[str, Any]:  # a resumed run keeps the curves sampled before the crash
        return {"rows": list(self.rows)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = [tuple(r) for r in state.get("rows", [])]

    def _applicable(self, pl_module: L.LightningModule) -> bool:
        core = getattr(pl_module, "core", None)
        spec = getattr(pl_module, "spec", None)
        if spec is None or not spec.kind.traced:  # no loss at the last step to trace back
            return False
        return core is not None and getattr(core, "directions", 2) == 1 and hasattr(pl_module, "front")

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if not self._applicable(pl_module) or (step != 1 and step % self.every_n_steps != 0):
            return
        if not trainer.is_global_zero:
            return
        norms = hidden_gradient_norms(pl_module, batch, self.max_samples)
        self.rows.extend((step, t + 1, float(v)) for t, v in enumerate(norms))
        ratio = math.log10(max(float(norms[0]), 1e-30) / max(float(norms[-1]), 1e-30))
        pl_module.log("grad_h_log10_ratio", ratio, rank_zero_only=True)
        logger = trainer.logger
        if logger is not None and hasattr(logger, "run_id") and hasattr(logger.experiment, "log_batch"):
            from mlflow.entities import Metric

            from seqpipe.runlog import grad_curve_name

            now = int(time.time() * 1000)
            metrics = [Metric(grad_curve_name(step), float(v), now, t + 1) for t, v in enumerate(norms)]
            guard_of(logger).call(
                "logging gradient norms", lambda: logger.experiment.log_batch(logger.run_id, metrics=metrics)
            )

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.rows or not trainer.is_global_zero:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        lines = ["step,t,grad_norm"] + [f"{s},{t},{v:.6g}" for s, t, v in self.rows]
        csv_path = self.out_dir / "grad_through_time.csv"
        atomic_write_text(csv_path, "\n".join(lines) + "\n")
        last = max(s for s, _, _ in self.rows)  # the final curve alone, for cross-model DVC plots
        final = ["t,grad_norm"] + [f"{t},{v:.6g}" for s, t, v in self.rows if s == last]
        atomic_write_text(self.out_dir / "grad_final.csv", "\n".join(final) + "\n")
        png_path = self.out_dir / "grad_through_time.png"
        plot_gradient_curves({type(pl_module).__name__: self.rows}, png_path, title=self.title)
        logger = trainer.logger
        if logger is not None and hasattr(logger, "run_id"):  # guarded: the model is published after this
            guard = guard_of(logger)
            guard.call("logging artifacts", lambda: logger.experiment.log_artifact(logger.run_id, str(csv_path)))
            guard.call("logging artifacts", lambda: logger.experiment.log_artifact(logger.run_id, str(png_path)))


def plot_gradient_curves(curves: dict[str, list[tuple[int, int, float]]], path: str | Path, title: str = "") -> None:
    """Log-scale ||dL_T/dh_t|| against t: the last sampled curve of each run (and earlier ones faint)."""
    from matplotlib.figure import Figure  # no pyplot: the user's backend and figures stay untouched

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for i, (label, rows) in enumerate(curves.items()):
        steps = sorted({s for s, _, _ in rows})
        color = f"C{i}"
        for s in steps:
            pts = sorted((t, v) for st, t, v in rows if st == s)
            last = s == steps[-1]
            ax.plot(
                [t for t, _ in pts],
                [max(v, 1e-30) for _, v in pts],
                color=color,
                alpha=1.0 if last else 0.15,
                label=f"{label} (step {s})" if last else None,
            )
    ax.set_yscale("log")
    ax.set_xlabel("time step t")
    ax.set_ylabel("||dL_T / dh_t||")
    ax.set_title(title or "gradient through time")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


class LearningRates(L.Callback):
    """Each optimizer's learning rate as ``lr-<Optimizer>`` (LearningRateMonitor's names), on logged steps only.

    Logged through ``pl_module.log``, so the rates travel in the same logger call as the step's other metrics:
    Lightning's LearningRateMonitor writes them in a call of its own, a second MLflow database write (~3-15 ms)
    every logged step (benchmarks/text.md).
    """

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.logger is None or not logging_step(pl_module):
            return
        for i, opt in enumerate(trainer.optimizers):
            name = f"lr-{type(opt).__name__}" + (f"-{i}" if len(trainer.optimizers) > 1 else "")
            for j, group in enumerate(opt.param_groups):
                key = name if len(opt.param_groups) == 1 else f"{name}/pg{j + 1}"
                pl_module.log(key, float(group["lr"]), on_step=True, on_epoch=False, batch_size=1)


class LearningCurve(L.Callback):
    """After each validation: one CSV row (step, epoch, train_loss, val_loss) for `dvc plots show`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.rows: list[str] = ["step,epoch,train_loss,val_loss"]

    def state_dict(self) -> dict[str, Any]:  # a resumed run keeps the rows written before the crash
        return {"rows": list(self.rows)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = list(state.get("rows", self.rows))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        m = trainer.callback_metrics
        train = m.get("train_loss")
        val = m.get("val_loss")
        if val is None:
            return
        self.rows.append(
            f"{trainer.global_step},{trainer.current_epoch},"
            f"{float(train) if train is not None else ''},{float(val):.6g}"
        )
        atomic_write_text(self.path, "\n".join(self.rows) + "\n")


class WeightEMA(WeightAveraging):
    """An exponential moving average of the weights (``fit.ema_decay``), Lightning's weight-averaging callback.

    Validation (so best.ckpt's choice), best.ckpt's ``state_dict`` and the model published at the end are the
    average; checkpoints also keep the raw weights (``current_model_state``), so a resumed run continues both.
    Averaging never feeds back into training. Updated every ``every_n_steps`` optimizer steps with
    ``decay ** every_n_steps`` (the same time constant), in one fused lerp over all tensors: Lightning's
    EMAWeightAveraging updates tensor by tensor, several times slower on the text LSTM's 3.7 M parameters
    (benchmarks/probes/ema.md).
    """

    def __init__(self, decay: float, every_n_steps: int = 1, where: Any = None):
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 < decay < 1.0:
            raise SeqpipeError(
                f"fit.ema_decay must be a number between 0 and 1, got {decay!r}",
                where=where,
                fix="set fit.ema_decay: 0.999 (an average over ~1,000 steps), or remove it",
            )
        if isinstance(every_n_steps, bool) or not isinstance(every_n_steps, int) or every_n_steps < 1:
            raise SeqpipeError(
                f"fit.ema_every_n_steps must be a positive integer, got {every_n_steps!r}",
                where=where,
                fix="set fit.ema_every_n_steps: 1 (every step), or remove it",
            )
        # use_buffers=False: no model here keeps running statistics; buffers are copied as they are
        super().__init__(use_buffers=False, multi_avg_fn=get_ema_multi_avg_fn(float(decay) ** every_n_steps))
        self.every_n_steps = every_n_steps

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        return step_idx is not None and step_idx % self.every_n_steps == 0


class ModelClassInCheckpoint(L.Callback):
    """Writes the model's class into every checkpoint (seqpipe.models.loading.CLASS_KEY), so a checkpoint copied
    away from its run.json (MLflow's ``checkpoints/best.ckpt``) still loads as a CRNN or Seq2Seq."""

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        from seqpipe.models.loading import CLASS_KEY, class_path_of

        checkpoint[CLASS_KEY] = class_path_of(pl_module)
