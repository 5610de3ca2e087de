"""The summary stage: one markdown row an experiment (model, best baseline, margin) -> metrics/summary.md.

The margin is signed so that > 0 means the model is better; its 95% interval (the metrics file's ``margin``
block, seqpipe.evaluation.margin) is shown in the same orientation, and the last column says better / worse /
tie (the interval straddles 0). Rows without an interval (shifted tests, variants, older files) say
"better (point)" / "worse (point)": the point margin alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from seqpipe import io
from seqpipe.evaluation.reported import Reported, verdict

METRICS = Path("metrics")
EVALUATION = "evaluation.json"  # reports/<experiment>/evaluation.json: an evaluation's whole document


def _point(margin: float) -> str:
    return "better (point)" if margin > 0 else "worse (point)"


def _interval(block: dict[str, Any] | None, direction: str) -> str:
    """The margin block's 95% interval in the summary's orientation (> 0: the model is better)."""
    if not block:
        return "-"
    low, high = (-block["ci95"][1], -block["ci95"][0]) if direction == "lower" else block["ci95"]
    return f"[{low:+.4f}, {high:+.4f}]"


def _shifted_row(d: dict[str, Any], metric: str, cut: str) -> str:
    """A summary row for a shifted-test metric (same direction as the primary one), against the baseline
    that scores best on that metric -- not the clean test's best baseline."""
    mv = d["model"][metric]
    scored = {b: m[metric] for b, m in d["baselines"].items() if metric in m}
    lower = d["direction"] == "lower"
    if scored:
        bb = (min if lower else max)(scored, key=scored.get)
        bv = scored[bb]
    else:
        bb, bv = "-", float("nan")
    margin = (bv - mv) if lower else (mv - bv)
    return (
        f"| {d['experiment']} (shifted){cut} | {d['domain']} | {metric} ({d['direction']} is better) | {mv:.4f} | "
        f"{bb} | {bv:.4f} | {margin:+.4f} | - | {_point(margin)} |"
    )


def summary(metrics_dir: Path = METRICS, out: Path | None = None, files: list[Path] | None = None) -> str:
    """One markdown row an experiment: primary metric, best baseline, the margin.

    ``files``: exactly these evaluation documents (reports/<experiment>/evaluation.json; the DVC stage lists its
    dependencies, so a stray file cannot change its output unseen); default: every one under reports/.
    """
    if files is None:
        files = sorted(Path("reports").glob(f"*/{EVALUATION}"))
    rows = [
        "| experiment | domain | metric | model | best baseline | baseline | margin | margin 95% CI | model is |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in sorted(files):
        d = json.loads(f.read_text())
        if "primary_metric" not in d:
            continue
        pm, mv = d["primary_metric"], d["model"][d["primary_metric"]]
        bb = d.get("best_baseline")
        bv = d["baselines"][bb][pm] if bb else float("nan")
        margin = (bv - mv) if d["direction"] == "lower" else (mv - bv)
        reported = Reported.from_json(d)
        block = reported.margin if reported.margin and reported.margin.get("vs") == bb else None
        better = verdict(block, d["direction"]) if block else _point(margin)
        cut = " (cut short by max_time)" if d.get("truncated_by_time") else ""
        rows.append(
            f"| {d['experiment']}{cut} | {d['domain']} | {pm} ({d['direction']} is better) | {mv:.4f} | "
            f"{bb} | {bv:.4f} | {margin:+.4f} | {_interval(block, d['direction'])} | {better} |"
        )
        for sm in reported.shifted_metrics:  # e.g. audio's channel-shifted test: its own best baseline
            if sm in d["model"]:
                rows.append(_shifted_row(d, sm, cut))
        for variant, values in reported.variants.items():  # e.g. the model + n-gram mixture
            if pm in values:
                vm = (bv - values[pm]) if d["direction"] == "lower" else (values[pm] - bv)
                rows.append(
                    f"| {variant}{cut} | {d['domain']} | {pm} ({d['direction']} is better) | {values[pm]:.4f} | "
                    f"{bb} | {bv:.4f} | {vm:+.4f} | - | {_point(vm)} |"
                )
    text = "\n".join(rows) + "\n" + _dynamic_table(files)
    io.write_text(out or metrics_dir / "summary.md", text)
    return text


def _dynamic_table(files: list[Path]) -> str:
    """Dynamic evaluation, apart from the static table: the model adapting on the test stream as it reads it,
    against the n-gram with a cache of the read text (an empty string where no experiment ran it)."""
    rows = []
    for f in sorted(files):
        d = json.loads(f.read_text())
        dyn = Reported.from_json(d).dynamic_evaluation
        if dyn is None:
            continue
        m, n = dyn.model, dyn.ngram
        margin = n.test_bpc - m.test_bpc
        rows.append(
            f"| {m.name} | {m.test_bpc:.4f} | {n.name} | {n.test_bpc:.4f} | {margin:+.4f} | "
            f"{'yes' if margin > 0 else 'no'} |"
        )
    if not rows:
        return ""
    head = [
        "",
        "Dynamic evaluation (weights or counts adapted on the test stream as it is read; not comparable with the "
        "rows above):",
        "",
        "| experiment | model test_bpc | adapted n-gram | n-gram test_bpc | margin | model better |",
        "|---|---|---|---|---|---|",
    ]
    return "\n".join(head + rows) + "\n"
