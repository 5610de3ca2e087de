"""Encoder-decoder multi-step forecasting, compared per horizon step with the direct model and baselines.

The seq2seq forecaster encodes the lookback window and decodes h = 1..H one step at a time (each
step reads its own previous forecast). It is scored on exactly the stock domain's test windows
(seqpipe.domains.stocks.task: same targets, same units, same baselines, same scoring functions),
beside:
    direct_<name>   the stock domain's direct multi-output model (one linear head emits all H steps),
                    read from its checkpoint (``evaluate.direct``); its numbers are the mean over its
                    training seeds, as in its own metrics file
    baselines       persistence, train mean, trailing realized vol, GARCH(1,1) and the HAR regressions
                    (volatility) or zero / persistence / train mean (returns), fitted on train rows only
``skill_vs_best`` reads the best of the forecasters before HAR (the direct model and the classic baselines);
the metrics file's ``best_baseline``, ``margin`` and ``diebold_mariano`` the best of all (the stock domain's
task docstring says why). Volatility adds ``test_mse_var`` and ``test_qlike`` for every forecaster.
MAE per horizon step for every forecaster goes to extra.test_mae_per_step and to
reports/<experiment>/per_step.csv + per_step.png.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqpipe.domains.stocks import task as stock_eval
from seqpipe.domains.stocks.baselines import baseline_forecasts, fit_garch
from seqpipe.domains.stocks.har import fit_har, har_report
from seqpipe.domains.stocks.scoring import variance_losses
from seqpipe.domains.stocks.significance import margin_and_dm
from seqpipe.errors import SeqpipeError
from seqpipe.evaluation import Evaluation
from seqpipe.evaluation.margin import best_baseline
from seqpipe.models.loading import load_model

log = logging.getLogger(__name__)

# the `evaluate:` keys this domain reads (anything else in a config is an error)
# what evaluate writes under reports/<experiment>/ (".": the whole folder), for `seqpipe dvc-yaml`
DVC_REPORTS = {"outs": ["per_step.png"], "plots": {"per_step.csv": {"x": "step", "y": "seq2seq"}}}
EVALUATE_KEYS = {
    "trailing_window": "days of the trailing realized-volatility baseline",
    "direct": "direct multi-output checkpoints scored beside the model: {name: path}",
}


predict = stock_eval.predict  # a CSV in, H forecasts out: the checkpoint's data_info is the stock domain's


def baselines(dm: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    """The stock domain's baselines (normally read from its reports/baselines/stocks.json)."""
    return stock_eval.baselines(dm, cfg)


def evaluate(model: torch.nn.Module, dm: Any, cfg: dict[str, Any], base: dict[str, Any], out_dir: Path) -> Evaluation:
    ev = cfg.get("evaluate", {})
    target = dm.target
    test = dm.datasets["test"]
    # scored exactly as the stock domain scores its models: same actuals, negative volatilities clipped to 0
    seeds, actual, clipped = stock_eval.model_forecasts(model, dm, cfg)
    pred = seeds[0]
    metrics = stock_eval.score(pred, actual, target)
    metrics["negative_vol_forecasts_clipped"] = clipped
    per_step = {"seq2seq": stock_eval.mae_per_step(pred, actual)}

    garch = base.get("garch11_params_list") or fit_garch(dm)
    har = fit_har(dm) if target == "volatility" else None
    bpreds = baseline_forecasts(dm, test, target, garch, int(ev.get("trailing_window", 22)), har)
    scores = {name: stock_eval.full_score(p, actual, target) for name, p in bpreds.items()}
    added = [name for name in scores if name not in stock_eval.CLASSIC[target]]  # after the first numbers
    per_step.update({name: stock_eval.mae_per_step(p, actual) for name, p in bpreds.items()})
    direct_missing = {}
    for name, ckpt in (ev.get("direct") or {}).items():
        if not Path(ckpt).exists():
            direct_missing[name] = f"{ckpt} not found (train it first)"
            log.warning("forecast: direct model %s skipped: %s", name, direct_missing[name])
            continue
        direct = load_model(ckpt)
        if (direct.hparams.get("data_info") or {}).get("target") != target:
            raise SeqpipeError(
                f"direct model {name} was trained on another target than {target!r}",
                where=ckpt,
                fix="point evaluate.direct at the stock experiment with the same target",
            )
        seeds = stock_eval.model_forecasts(direct, dm, cfg)[0]
        per_seed = [stock_eval.score(p, actual, target) for p in seeds]
        scores[name] = {k: float(np.mean([s[k] for s in per_seed])) for k in per_seed[0]}
        scores[name]["test_mae_std"] = (
            float(np.std([s["test_mae"] for s in per_seed], ddof=1)) if len(seeds) > 1 else 0.0
        )
        if target == "volatility":
            losses = [variance_losses(p, actual) for p in seeds]
            scores[name].update({k: float(np.mean([v[k] for v in losses])) for k in losses[0]})
        bpreds[name] = seeds
        per_step[name] = np.mean([stock_eval.mae_per_step(p, actual) for p in seeds], axis=0).tolist()
        per_step[f"{name}_seeds"] = [stock_eval.mae_per_step(p, actual) for p in seeds]
    first = {name: s for name, s in scores.items() if name not in added}
    best = min(first, key=lambda b: first[b]["test_mae"])
    metrics["skill_vs_best"] = stock_eval.skill(metrics["test_mae"], scores[best]["test_mae"])
    for name, s in first.items():
        metrics[f"skill_vs_{name}"] = stock_eval.skill(metrics["test_mae"], s["test_mae"])
    for h, v in enumerate(per_step["seq2seq"], 1):
        metrics[f"test_mae_step{h}"] = v
    metrics.update(variance_losses(pred, actual) if target == "volatility" else {})
    metrics.update({f"skill_vs_{n}": stock_eval.skill(metrics["test_mae"], scores[n]["test_mae"]) for n in added})
    vs = best_baseline(scores, "test_mae", "lower")
    margin, dm_test = margin_and_dm(
        dm.dates_of(test.origins()), dm.ticker_of(test.origins()), pred[None], actual, bpreds[vs], vs
    )
    artifacts = _per_step_report(out_dir, per_step, target)
    hp = model.hparams
    return Evaluation(
        task=f"{dm.horizon}-step encoder-decoder forecast of daily "
        f"{'log returns' if target == 'returns' else 'realized volatility'} (percent), lookback {dm.lookback} "
        f"days, test from {dm.meta['stocks']['test_start']}",
        primary_metric="test_mae",
        direction="lower",
        model=metrics,
        baselines=scores,
        extra={
            "target": target,
            "horizon": dm.horizon,
            "model_description": f"{str(hp.get('cell')).upper()} encoder-decoder, hidden {hp.get('hidden_size')}, "
            f"attention {hp.get('attention')}",
            "best_by_test_mae": best,
            "test_mae_per_step": per_step,
            "direct_missing": direct_missing,
            "test_windows": int(len(test)),
            "units": "percent log returns",
            **({"har": har_report(har)} if har else {}),
            "diebold_mariano": dm_test,
        },
        artifacts=artifacts,
        margin=margin,
    )


def _per_step_report(out_dir: Path, per_step: dict[str, list], target: str) -> list[Path]:
    names = [n for n in per_step if not n.endswith("_seeds")]
    H = len(per_step["seq2seq"])
    path = out_dir / "per_step.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", *names])
        for h in range(H):
            w.writerow([h + 1, *(f"{per_step[n][h]:.6g}" for n in names)])
    png = out_dir / "per_step.png"
    try:
        from matplotlib.figure import Figure  # no pyplot: the user's backend and figures stay untouched

        fig = Figure(figsize=(7, 4))
        ax = fig.subplots()
        for n in names:
            ax.plot(range(1, H + 1), per_step[n], marker="o", lw=2.0 if n == "seq2seq" else 1.0, label=n)
        ax.set_xlabel("horizon step h (days)")
        ax.set_ylabel("test MAE (percent)")
        ax.set_title(f"per-step MAE, {target}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(png, dpi=110)
    except Exception as e:  # a plot is a nicety; never lose the metrics for it
        log.warning("per-step plot skipped: %s", e)
        return [path]
    return [path, png]
