"""`seqpipe compare`: experiments x their primary metric, best baseline and margin, as one narrow table.

From metrics/ (the headline each evaluate stage writes, ``seqpipe.tracking.headline``) or from the MLflow store
(``--mlflow``: every run with a ``test/margin_vs_best_baseline``, newest first, so runs outside DVC count too).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from seqpipe.errors import SeqpipeError

COLUMNS = ("experiment", "metric", "model", "best", "baseline", "margin", "ci95", "verdict")


def from_metrics(metrics_dir: Path) -> list[dict[str, Any]]:
    rows = []
    for f in sorted(metrics_dir.glob("*.json")):
        d = json.loads(f.read_text())
        if not {"metric", "margin"} <= set(d):  # not a headline (e.g. an older full document)
            continue
        low, high = d.get("ci_low"), d.get("ci_high")
        rows.append({**d, "experiment": f.stem, "ci95": f"[{low:+.4f}, {high:+.4f}]" if low is not None else "-"})
    if not rows:
        raise SeqpipeError("no headline metrics found", where=metrics_dir, fix="run `make repro` or `seqpipe evaluate`")
    return rows


def from_mlflow(tracking_uri: str) -> list[dict[str, Any]]:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    rows, seen = [], set()
    for exp in client.search_experiments():
        runs = client.search_runs(
            [exp.experiment_id], "metrics.`test/margin_vs_best_baseline` > -1e300", order_by=["start_time DESC"]
        )
        for r in runs:
            name = r.info.run_name
            if name in seen:
                continue
            seen.add(name)
            pm = r.data.params.get("evaluate.primary_metric", "")
            model = r.data.metrics.get(f"test/{pm.removeprefix('test_')}")
            rows.append(
                {
                    "experiment": name,
                    "metric": pm,
                    "model": model,
                    "best": r.data.params.get("evaluate.best_baseline", "-"),
                    "baseline": None,
                    "margin": r.data.metrics["test/margin_vs_best_baseline"],
                    "ci95": "-",
                    "verdict": "-",
                }
            )
    if not rows:
        raise SeqpipeError("no evaluated runs in the MLflow store", where=tracking_uri, fix="run `seqpipe evaluate`")
    return sorted(rows, key=lambda r: r["experiment"])


def table(rows: list[dict[str, Any]]) -> str:
    def cell(v: Any) -> str:
        return "-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)

    cells = [[cell(r.get(c)) for c in COLUMNS] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines) + "\n"
