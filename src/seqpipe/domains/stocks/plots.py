"""The forecast plot of one ticker and one horizon step: forecast.csv (DVC plot data) and forecast.png."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def forecast_plots(
    out_dir: Path,
    ev: dict[str, Any],
    target: str,
    names: list[str],
    tick: np.ndarray,
    dates: np.ndarray,
    actual: np.ndarray,
    model: np.ndarray,
    bpreds: dict[str, np.ndarray],
    best: str,
) -> list[Path]:
    """forecast.csv (DVC plot data) and forecast.png (MLflow artifact) for one ticker and one step."""
    want = ev.get("plot_ticker", "SP500")
    t = names.index(want) if want in names and (tick == names.index(want)).any() else int(np.bincount(tick).argmax())
    step = int(ev.get("plot_step", 1 if target == "returns" else actual.shape[1]))
    sel = np.flatnonzero(tick == t)
    cols = {"actual": actual[sel, step - 1], "model": model[sel, step - 1]}
    cols.update({b: p[sel, step - 1] for b, p in bpreds.items()})
    csv_path = out_dir / "forecast.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["date", *cols])
        for i, d in enumerate(dates[sel]):
            w.writerow([str(d), *(f"{cols[c][i]:.6g}" for c in cols)])
    png = out_dir / "forecast.png"
    try:
        from matplotlib.figure import Figure  # no pyplot: the user's backend and figures stay untouched

        fig = Figure(figsize=(11, 4))
        ax = fig.subplots()
        x = dates[sel].astype("datetime64[D]").astype(object)
        ax.plot(x, cols["actual"], lw=0.6, color="0.6", label="actual")
        ax.plot(x, cols["model"], lw=1.0, label="model (seed mean)")
        ax.plot(x, cols[best], lw=1.0, ls="--", label=f"{best} (best baseline)")
        what = "log return" if target == "returns" else f"{step}-day realized vol"
        ax.set_title(f"{names[t]}: step {step} forecast of {what} (%), test period")
        ax.legend(loc="upper right")
        fig.tight_layout()
        fig.savefig(png, dpi=110)
    except Exception as e:  # a plot is a nicety; never lose the metrics for it
        log.warning("forecast plot skipped: %s", e)
        return [csv_path]
    return [csv_path, png]
