"""DVC plots: every definition in dvc.yaml reads columns its stage writes, and the offline page draws them all."""

from __future__ import annotations

import ast
import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from seqpipe import dvcplots

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "seqpipe"


def _literal_header(module: Path, csv_name: str) -> list[str]:
    """The literal header list of the first ``writerow([...])`` after ``csv_name`` in a writer's source."""
    text = module.read_text()
    at = text.index(f'"{csv_name}"')
    m = re.compile(r"writerow\((\[[^\]]*\])\)").search(text, at)
    return ast.literal_eval(m.group(1))


def written_headers(tmp: Path) -> dict[str, list[str]]:
    """The header each plot CSV's writer writes, by file name; forecast.csv and per_step.csv by the writers."""
    from seqpipe.callbacks import LearningCurve
    from seqpipe.domains.forecast.task import _per_step_report
    from seqpipe.domains.stocks.plots import forecast_plots

    tmp.mkdir(parents=True, exist_ok=True)
    dates = np.arange("2020-01-01", "2020-01-07", dtype="datetime64[D]")
    preds = np.linspace(0, 1, 12).reshape(6, 2)
    forecast_plots(tmp, {}, "returns", ["SP500"], np.zeros(6, int), dates, preds, preds, {"naive": preds}, "naive")
    per_step = {"seq2seq": [0.1, 0.2], "naive": [0.3, 0.4], "naive_seeds": [[0.3, 0.4]]}
    _per_step_report(tmp, per_step, "returns")
    grad = re.search(r'final = \["([^"]+)"\]', (SRC / "callbacks.py").read_text()).group(1)
    return {
        "forecast.csv": next(csv.reader(open(tmp / "forecast.csv"))),
        "per_step.csv": next(csv.reader(open(tmp / "per_step.csv"))),
        "roc.csv": _literal_header(SRC / "domains/dna/task.py", "roc.csv"),
        "predictions.csv": _literal_header(SRC / "domains/audio/task.py", "predictions.csv"),
        "learning_curve.csv": LearningCurve(tmp / "lc.csv").rows[0].split(","),
        "grad_final.csv": grad.split(","),
    }


def plot_definitions(doc: dict) -> list[tuple[str, str, str, str | None]]:
    """(csv path, x, y, template) of every plot of a dvc.yaml: the stages' and the top-level ones."""
    defs = []
    for stage in doc["stages"].values():
        for entry in stage.get("plots", []):
            for path, opts in entry.items():
                defs.append((path, opts.get("x"), opts.get("y"), opts.get("template")))
    for entry in doc.get("plots", []):
        for opts in entry.values():
            for path, y in opts["y"].items():
                defs.append((path, opts["x"], y, opts.get("template")))
    return defs


def test_every_plot_names_columns_its_stage_writes(tmp_path: Path) -> None:
    doc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    headers = written_headers(tmp_path)
    defs = plot_definitions(doc)
    assert len(defs) >= 20
    for path, x, y, template in defs:
        header = headers[Path(path).name]
        assert x in header and y in header, (path, x, y, header)
        assert (template == "temporal") == (x == "date"), (path, template)  # dates on a temporal axis, only them
    forecasts = [d for d in defs if d[0].endswith("/forecast.csv")]
    assert len(forecasts) == 4 and {d[2] for d in forecasts} == {"model"}  # the model's series, not a baseline
    assert {d[2] for d in defs if d[0].endswith("/per_step.csv")} == {"seq2seq"}
    first_date = next(iter(csv.DictReader(open(tmp_path / "forecast.csv"))))["date"]
    assert first_date == "2020-01-01"  # an ISO date vega parses as a time


def test_the_temporal_template_is_the_committed_one() -> None:
    committed = ROOT / ".dvc/plots/temporal.json"
    assert committed.read_text() == dvcplots.template_text("temporal")
    spec = json.loads(committed.read_text())
    assert spec["encoding"]["x"]["type"] == "temporal" and spec["mark"]["type"] == "line"


def test_ensure_templates_keeps_an_edited_one(tmp_path: Path) -> None:
    assert dvcplots.ensure_templates(tmp_path) == [tmp_path / ".dvc/plots/temporal.json"]
    (tmp_path / ".dvc/plots/temporal.json").write_text("{}")
    assert dvcplots.ensure_templates(tmp_path) == []
    assert (tmp_path / ".dvc/plots/temporal.json").read_text() == "{}"


def _fake_csv(path: Path, header: list[str], rows: int = 8) -> None:
    """A few rows of plausible values: ISO dates, two class labels, numbers elsewhere."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i in range(rows):
            row = []
            for c in header:
                if c == "date":
                    row.append(str(np.datetime64("2021-03-01") + i))
                elif c in ("actual", "predicted") and path.name == "predictions.csv":
                    row.append(["yes", "no"][(i + (c == "predicted")) % 3 % 2])
                elif c in ("file", "speaker"):
                    row.append(f"{c}{i}")
                else:
                    row.append(f"{(i + 1) * 0.1 + 0.01 * len(c):.4g}")
            w.writerow(row)


# wraps window.vegaEmbed (the inlined bundle sets it) to keep every embed's view for the checks
RECORD_VIEWS = """
window.__embeds = [];
Object.defineProperty(window, 'vegaEmbed', {configurable: true,
  set(f) { window.__realEmbed = f; },
  get() { return (el, spec, opts) => {
    const p = window.__realEmbed(el, spec, opts);
    window.__embeds.push(p.then(r => ({id: el, view: r.view}), e => ({id: el, error: String(e)})));
    return p; }; }});
"""
COUNT_MARKS = """async () => {
  // the x positions of a view's data-mark items placed at finite coordinates (axes and legends excluded)
  function walk(mark, xs) {
    if (mark.role === 'mark' && mark.marktype !== 'group')
      for (const it of mark.items) if (Number.isFinite(it.x) && Number.isFinite(it.y)) xs.push(Math.round(it.x));
    for (const item of mark.items || []) for (const child of item.items || []) walk(child, xs);
    return xs;
  }
  const done = await Promise.all(window.__embeds);
  return done.map(r => {
    const xs = r.view ? walk(r.view.scenegraph().root, []) : [];
    return {id: r.id.slice(1), error: r.error || null, marks: xs.length, distinct_x: new Set(xs).size,
            drawn: !!document.querySelector(r.id + ' canvas, ' + r.id + ' svg')};
  });
}"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium not installed (make browser)")
def test_offline_page_draws_every_plot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from playwright.sync_api import sync_playwright

    doc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    headers = written_headers(tmp_path / "writers")
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "dvc.yaml", project)
    shutil.copy(ROOT / "params.yaml", project)
    dvc = str(Path(sys.executable).with_name("dvc"))
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=project, check=True)
    paths = sorted({d[0] for d in plot_definitions(doc)})
    for p in paths:
        _fake_csv(project / p, headers[Path(p).name])
    monkeypatch.chdir(project)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{__import__('os').environ['PATH']}")
    index = dvcplots.show(Path("dvc_plots"))
    html = (project / index).read_text()
    assert "cdn.jsdelivr" not in html and "window.vegaEmbed=" in html
    div_ids = re.findall(r'<div id = "([^"]+)">', html)
    assert len(div_ids) == len({p for p in paths if not p.startswith("models/")}) + len(doc["plots"])

    blocked: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=shutil.which("chromium"),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        page = browser.new_page()
        page.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith("file:")
                else (blocked.append(route.request.url), route.abort())
            ),
        )
        page.add_init_script(RECORD_VIEWS)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((project / index).as_uri())
        result = page.evaluate(COUNT_MARKS)
        browser.close()
    assert not errors and not blocked, (errors, blocked)
    assert sorted(r["id"] for r in result) == sorted(div_ids)
    for r in result:
        # data marks at real positions, spread along x (dates read as numbers give NaN: nothing drawn)
        assert r["error"] is None and r["drawn"] and r["marks"] >= 2 and r["distinct_x"] >= 2, r
