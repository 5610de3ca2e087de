"""Stocks: H-step forecasts of returns or realized volatility on the test windows, against baselines.

Every forecaster -- model seeds and baselines -- is scored on exactly the same test windows (every
forecast origin of every ticker's test record), in percent log-return units:

    MAE, RMSE           pooled over windows and the H steps; MAE per step h in extra.test_mae_per_step
    directional acc.    returns only: share of (window, step) pairs with sign(forecast) == sign(actual);
                        a forecast of exactly 0 counts half (a coin flip); actual 0 moves are left out
    skill               1 - MAE_model / MAE_baseline, against the best baseline (lowest test MAE) and
                        each one; negative when the baseline wins, reported all the same

Baselines (seqpipe.domains.stocks.baselines, fitted on train rows only): zero / persistence / train_mean for
returns; persistence / train_mean / trailing_rv / garch11 and the HAR regressions har_levels / har_log /
har_log_range (seqpipe.domains.stocks.har) for volatility. HAR models a volatility, not a return: the returns
task has none.

Volatility also reports, for the model and every baseline, ``test_mse_var`` and ``test_qlike`` (the forecasts as
variances; seqpipe.domains.stocks.scoring). The metrics file's ``best_baseline`` (and ``margin``: the interval of
model - best baseline MAE, seqpipe.domains.stocks.significance; ``diebold_mariano``: the DM test against it) is the
best of all baselines; ``skill_vs_best``, ``best_baseline_by_test_mae``, ``per_ticker`` and the plots keep the
best of the baselines before HAR (``CLASSIC``), so their numbers stay comparable with earlier runs.

Volatility forecasts below 0 (the linear head can undershoot) are clipped to 0, counted in
``negative_vol_forecasts_clipped``. The model's numbers are the mean over its training seeds (SeedGroup members),
with their standard deviation (``*_std``) and every seed's value in the extra section; ``ensemble_*`` scores the seeds'
mean forecast.

Modules: ``scoring`` (the score definitions), ``plots`` (forecast.csv / forecast.png), ``predict`` (`seqpipe
predict`); this one holds the baselines and the evaluation.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqpipe.domains.stocks.baselines import baseline_forecasts, fit_garch
from seqpipe.domains.stocks.datamodule import StockDataModule
from seqpipe.domains.stocks.features import make_targets
from seqpipe.domains.stocks.har import fit_har, har_report
from seqpipe.domains.stocks.plots import forecast_plots
from seqpipe.domains.stocks.predict import predict  # noqa: F401 -- the domain's `seqpipe predict`
from seqpipe.domains.stocks.scoring import mae_per_step, score, skill, variance_losses
from seqpipe.domains.stocks.significance import margin_and_dm
from seqpipe.domains.stocks.windows import ForecastWindows
from seqpipe.errors import SeqpipeError
from seqpipe.evaluation import Evaluation
from seqpipe.evaluation.margin import best_baseline

log = logging.getLogger(__name__)

# the `evaluate:` keys this domain reads (anything else in a config is an error)
# what evaluate writes under reports/<experiment>/ (".": the whole folder), for `seqpipe dvc-yaml`
DVC_REPORTS = {"outs": ["forecast.png"], "plots": {"forecast.csv": {"template": "temporal", "x": "date", "y": "model"}}}
SERVE = "seqpipe.domains.stocks.serve:serve"  # the served MLflow model: a DataFrame of stocks inputs (seqpipe.serving)
EVALUATE_KEYS = {
    "trailing_window": "days of the trailing realized-volatility baseline",
    "plot_ticker": "ticker drawn in forecast.png",
    "plot_step": "days between plotted forecasts",
}


# the baselines before HAR: the ones skill_vs_best, per_ticker and the plots read their best from
CLASSIC = {
    "returns": ("zero", "persistence", "train_mean"),
    "volatility": ("persistence", "train_mean", "trailing_rv", "garch11"),
}
BASELINES = {**CLASSIC, "volatility": (*CLASSIC["volatility"], "har_levels", "har_log", "har_log_range")}


def full_score(pred: np.ndarray, actual: np.ndarray, target: str) -> dict[str, float]:
    """``score`` and, for volatility, the variance losses after it."""
    return {**score(pred, actual, target), **(variance_losses(pred, actual) if target == "volatility" else {})}


# -- model forecasts --------------------------------------------------------------------------
@torch.no_grad()
def member_forecasts(model: torch.nn.Module, ds: ForecastWindows, scale: float, batch_size: int = 2048) -> np.ndarray:
    """(seeds, N, H) forecasts in percent units for every window of ``ds``, in order."""
    model.eval()
    device = next(model.parameters()).device
    outs = []
    for s in range(0, len(ds), batch_size):
        x = ds.__getitems__(list(range(s, min(len(ds), s + batch_size))))["inputs"].to(device)
        y = model.member_outputs(x) if hasattr(model, "member_outputs") else model(x)[0][None]
        outs.append(y.float().cpu().numpy())
    return np.concatenate(outs, axis=1).astype(np.float64) * scale


# -- baselines --------------------------------------------------------------------------------
def baselines(dm: StockDataModule, cfg: dict[str, Any]) -> dict[str, Any]:
    """Fit GARCH on train; score every baseline of both targets on the test windows."""
    ev = cfg.get("evaluate", {})
    dm.prepare_data()
    dm.setup("test")
    test = dm.datasets["test"]
    garch = fit_garch(dm)
    har = fit_har(dm)
    by_target, per_step = {}, {}
    for target in ("returns", "volatility"):
        actual = make_targets(test.future_returns(test.origins()), target)
        preds = baseline_forecasts(dm, test, target, garch, int(ev.get("trailing_window", 22)), har)
        by_target[target] = {name: full_score(p, actual, target) for name, p in preds.items()}
        per_step[target] = {name: mae_per_step(p, actual) for name, p in preds.items()}
    return {
        "baselines": by_target[dm.target],
        "by_target": by_target,
        "test_mae_per_step": per_step,
        "garch11_params": {k: dict(zip(("mu", "omega", "alpha", "beta"), v, strict=False)) for k, v in garch.items()},
        "garch11_params_list": garch,
        "test_windows": len(test),
        "har": har_report(har),
    }


# -- evaluation -------------------------------------------------------------------------------
def model_forecasts(
    model: torch.nn.Module, dm: StockDataModule, cfg: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, int]:
    """(seeds, N, H) test forecasts of a checkpoint trained on ``dm.target``, the (N, H) actuals, and
    how many negative volatility forecasts were clipped to 0. Any forecaster on this datamodule
    (e.g. the seq2seq one) is scored the same way."""
    target = dm.target
    trained_on = (model.hparams.get("data_info") or {}).get("target")
    if trained_on and trained_on != target:
        raise SeqpipeError(
            f"the model was trained on target {trained_on!r}, the config evaluates {target!r}",
            where=cfg.get("config_path"),
            fix="evaluate with the config the model was trained with",
        )
    test = dm.datasets["test"]
    actual = make_targets(test.future_returns(test.origins()), target)
    seeds = member_forecasts(model, test, dm.meta["stocks"]["target_scale"])
    clipped = int((seeds < 0).sum()) if target == "volatility" else 0
    if clipped:
        seeds = np.maximum(seeds, 0.0)  # a volatility is >= 0; the linear head can undershoot
    return seeds, actual, clipped


def scored_baselines(
    dm: StockDataModule,
    cfg: dict[str, Any],
    base: dict[str, Any],
    actual: np.ndarray,
    har: dict[str, dict] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, float]]]:
    """Every baseline's test forecasts for ``dm.target`` (GARCH parameters from ``base``; HAR fitted when
    ``har`` is None) and their scores."""
    garch = base.get("garch11_params_list") or fit_garch(dm)
    trailing = int(cfg.get("evaluate", {}).get("trailing_window", 22))
    bpreds = baseline_forecasts(dm, dm.datasets["test"], dm.target, garch, trailing, har)
    return bpreds, {name: full_score(p, actual, dm.target) for name, p in bpreds.items()}


def evaluate(
    model: torch.nn.Module, dm: StockDataModule, cfg: dict[str, Any], base: dict[str, Any], out_dir: Path
) -> Evaluation:
    ev = cfg.get("evaluate", {})
    target = dm.target
    test = dm.datasets["test"]
    origins = test.origins()
    seeds, actual, clipped = model_forecasts(model, dm, cfg)
    per_seed = [score(p, actual, target) for p in seeds]
    metrics = seed_metrics(per_seed, score(seeds.mean(0), actual, target))
    har = fit_har(dm) if target == "volatility" else None
    bpreds, bscores = scored_baselines(dm, cfg, base, actual, har)
    classic = {name: bscores[name] for name in CLASSIC[target]}
    best = min(classic, key=lambda b: classic[b]["test_mae"])
    metrics.update(skills(metrics["test_mae"], per_seed, classic, best))
    metrics.update(added_metrics(metrics["test_mae"], seeds, actual, target, bscores, classic))

    names = [t["ticker"] for t in dm.meta["stocks"]["tickers"]]
    tick = dm.ticker_of(origins)
    mean_pred = seeds.mean(0)
    per_ticker = ticker_maes(names, tick, actual, mean_pred, bpreds[best], best)
    dates = dm.dates_of(origins)
    shown = {name: bpreds[name] for name in classic}  # the plots and forecast.csv as before HAR
    artifacts = forecast_plots(out_dir, ev, target, names, tick, dates, actual, mean_pred, shown, best)
    member_seeds = list(model.hparams.get("member_seeds") or [cfg.get("seed", 0)])
    vs = best_baseline(bscores, "test_mae", "lower")
    margin, dm_test = margin_and_dm(dates, tick, seeds, actual, bpreds[vs], vs)
    return Evaluation(
        task=f"{dm.horizon}-day direct forecast of daily "
        f"{'log returns' if target == 'returns' else 'realized volatility'} "
        f"(percent), lookback {dm.lookback} days, test from {dm.meta['stocks']['test_start']}",
        primary_metric="test_mae",
        direction="lower",
        model=metrics,
        baselines=bscores,
        extra={
            "target": target,
            "horizon": dm.horizon,
            "lookback": dm.lookback,
            "seeds": member_seeds,
            "per_seed": per_seed,
            "best_baseline_by_test_mae": best,
            "test_mae_per_step": {
                "model": np.mean([mae_per_step(p, actual) for p in seeds], axis=0).tolist(),
                "model_seeds": [mae_per_step(p, actual) for p in seeds],
                **{name: mae_per_step(p, actual) for name, p in bpreds.items()},
            },
            "test_windows": int(len(test)),
            "negative_vol_forecasts_clipped": clipped,
            # read directional accuracy against this: "always up" scores about the share of up moves
            "test_share_up_moves": float((actual[actual != 0] > 0).mean()) if target == "returns" else None,
            "test_period": [str(dates.min()), str(dates.max())],
            "per_ticker": per_ticker,
            "units": "percent log returns",
            **({"har": har_report(har)} if har else {}),
            "diebold_mariano": dm_test,
        },
        artifacts=artifacts,
        margin=margin,
    )


def seed_metrics(per_seed: list[dict[str, float]], ensemble: dict[str, float]) -> dict[str, float]:
    """Each score's mean over the seeds and its std (0 for one seed), then the seeds' mean forecast's scores."""
    metrics: dict[str, float] = {}
    for k in per_seed[0]:
        vals = np.array([s[k] for s in per_seed])
        metrics[k] = float(vals.mean())
        metrics[f"{k}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
    for k in ("test_mae", "test_rmse", "test_dir_acc"):
        if k in ensemble:
            metrics[f"ensemble_{k}"] = ensemble[k]
    return metrics


def added_metrics(
    model_mae: float,
    seeds: np.ndarray,
    actual: np.ndarray,
    target: str,
    bscores: dict[str, dict[str, float]],
    classic: dict[str, dict[str, float]],
) -> dict[str, float]:
    """The model metrics added after the first ones: variance losses (mean, std over seeds, ensemble) and
    the skill against each baseline the first ones did not know."""
    out: dict[str, float] = {}
    if target == "volatility":
        per_seed = [variance_losses(p, actual) for p in seeds]
        out.update(seed_metrics(per_seed, {}))
        out.update({f"ensemble_{k}": v for k, v in variance_losses(seeds.mean(0), actual).items()})
    out.update({f"skill_vs_{n}": skill(model_mae, s["test_mae"]) for n, s in bscores.items() if n not in classic})
    return out


def skills(
    model_mae: float, per_seed: list[dict[str, float]], bscores: dict[str, dict[str, float]], best: str
) -> dict[str, float]:
    """Skill against the best baseline and each one, and the std over seeds of the skill against the best."""
    out = {"skill_vs_best": skill(model_mae, bscores[best]["test_mae"])}
    for name, s in bscores.items():
        out[f"skill_vs_{name}"] = skill(model_mae, s["test_mae"])
    seed_skill = [skill(s["test_mae"], bscores[best]["test_mae"]) for s in per_seed]
    out["skill_vs_best_std"] = float(np.std(seed_skill, ddof=1)) if len(seed_skill) > 1 else 0.0
    return out


def ticker_maes(
    names: list[str], tick: np.ndarray, actual: np.ndarray, model: np.ndarray, baseline: np.ndarray, best: str
) -> dict[str, dict[str, Any]]:
    """Test windows and MAE of the model (seed mean) and of the best baseline, per ticker."""
    return {
        names[t]: {
            "windows": int((tick == t).sum()),
            "model_mae": float(np.abs(model[tick == t] - actual[tick == t]).mean()),
            f"{best}_mae": float(np.abs(baseline[tick == t] - actual[tick == t]).mean()),
        }
        for t in np.unique(tick)
    }
