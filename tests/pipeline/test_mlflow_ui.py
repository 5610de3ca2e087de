"""The MLflow UI in a real headless browser over two real pipeline runs: the experiment opens on its training
runs, the Dataset column shows the prepared store, two runs are selected and compared, and the compare view shows
the primary test metric (``test/bpc``) and the param the two fits differ in (``trainer.max_steps``)."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ui_with_two_runs(in_tmp):
    """Two real pipeline runs (preprocess, fit, baselines, evaluate of a tiny LSTM and GRU through the CLI),
    then `mlflow ui` over the store they wrote."""
    import json

    import mlflow
    import yaml

    from helpers import text_experiment, write_corpus
    from seqpipe.cli import main

    write_corpus(in_tmp, 6000)
    ids, bpc = [], {}
    for cell, steps in (("lstm", 20), ("gru", 30)):
        cfg = {
            "name": f"ui-{cell}",
            **text_experiment(
                "data/prepared/tiny",
                seq_len=32,
                batch_size=16,
                cell=cell,
                hidden_size=16,
                num_layers=1,
                embedding_dim=8,
                lr=0.01,
            ),
            "trainer": {
                "max_steps": steps,
                "val_check_interval": 10,
                "limit_val_batches": 2,
                "accelerator": "cpu",
                "enable_progress_bar": False,
            },
            "fit": {"grad_every_n_steps": 10},
            "evaluate": {"ngram_max_order": 3, "lanes": 4, "sample_length": 20, "mixture": False},
        }
        (in_tmp / f"{cell}.yaml").write_text(yaml.safe_dump(cfg))
        for command in ("preprocess", "fit", "baselines", "evaluate"):
            assert main([command, "--config", f"{cell}.yaml"]) == 0
        ids.append(json.loads((in_tmp / f"models/ui-{cell}.training.json").read_text())["mlflow_run_id"])
        bpc[ids[-1]] = json.loads((in_tmp / f"reports/ui-{cell}/evaluation.json").read_text())["model"]["test_bpc"]
    uri = f"sqlite:///{in_tmp / 'mlruns/mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    exp = mlflow.get_run(ids[0]).info.experiment_id
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mlflow")),
            "ui",
            "--backend-store-uri",
            uri,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(base + "/health", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("mlflow ui exited")
            time.sleep(1)
    else:
        proc.terminate()
        pytest.fail("mlflow ui did not become ready in 120 s")
    yield base, exp, ids, bpc
    os.killpg(proc.pid, 15)
    proc.wait(timeout=30)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium not installed (make browser)")
def test_compare_two_runs_in_the_browser(ui_with_two_runs):
    from playwright.sync_api import expect, sync_playwright

    from seqpipe.tracking import runs_url

    base, exp, ids, bpc = ui_with_two_runs
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium"),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(runs_url(exp, base=base))  # the link fit and `make ui` print: it opens on the training runs
        for run_id in ids:
            row = page.locator(f".ag-row[row-id='{run_id}']").first
            expect(row).to_be_visible(timeout=60_000)
        expect(page.get_by_text("ui-lstm").first).to_be_visible()
        expect(page.get_by_text("tiny").first).to_be_visible()  # the Dataset column: the prepared store
        for run_id in ids:
            page.locator(f".ag-row[row-id='{run_id}'] .ag-selection-checkbox input").first.check()
        page.screenshot(path=str(ARTIFACTS / "mlflow_runs_selected.png"))
        page.get_by_test_id("runs-compare-button").click()
        page.wait_for_url("**/compare-runs**", timeout=30_000)
        expect(page.get_by_text("test/bpc").first).to_be_visible(timeout=60_000)  # the primary test metric
        for value in bpc.values():  # the evaluate stage's numbers, as metrics/*.json has them (the UI rounds to 3)
            expect(page.get_by_text(f"{value:.3f}", exact=True).first).to_be_visible()
        row = page.locator("tr").filter(has_text="trainer.max_steps").last  # the params table: the config, dotted
        row.scroll_into_view_if_needed()
        expect(row).to_be_visible(timeout=30_000)
        cells = [c.strip() for c in row.locator("td, th").all_inner_texts()]
        assert cells == ["trainer.max_steps", "20", "30"]  # the setting the two fits differ in, run by run
        page.screenshot(path=str(ARTIFACTS / "mlflow_compare.png"), full_page=True)
        assert all(i in page.url for i in ids)
        browser.close()
