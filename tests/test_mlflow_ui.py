"""The MLflow UI in a real headless browser: two runs, selected and compared, metrics on the page."""

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
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ui_with_two_runs(tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    exp = mlflow.create_experiment("seqpipe-text", artifact_location=(tmp_path / "artifacts").as_uri())
    ids = []
    for name, bpc in (("text-lstm", 2.3456), ("text-gru", 2.1234)):
        with mlflow.start_run(experiment_id=exp, run_name=name) as r:
            for step in range(3):
                mlflow.log_metric("val_bpc", bpc + 0.5 * (2 - step), step=step)
            mlflow.log_metric("test_bpc", bpc)
            ids.append(r.info.run_id)
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("mlflow")), "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
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
    yield base, exp, ids
    os.killpg(proc.pid, 15)
    proc.wait(timeout=30)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium not installed (make browser)")
def test_compare_two_runs_in_the_browser(ui_with_two_runs):
    from playwright.sync_api import expect, sync_playwright

    base, exp, ids = ui_with_two_runs
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium"), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{base}/#/experiments/{exp}/runs?workflowType=machine_learning")
        for run_id in ids:
            row = page.locator(f".ag-row[row-id='{run_id}']").first
            expect(row).to_be_visible(timeout=60_000)
        expect(page.get_by_text("text-lstm").first).to_be_visible()
        for run_id in ids:
            page.locator(f".ag-row[row-id='{run_id}'] .ag-selection-checkbox input").first.check()
        page.screenshot(path=str(ARTIFACTS / "mlflow_runs_selected.png"))
        page.get_by_test_id("runs-compare-button").click()
        page.wait_for_url("**/compare-runs**", timeout=30_000)
        expect(page.get_by_text("test_bpc").first).to_be_visible(timeout=60_000)
        expect(page.get_by_text("2.1234").first).to_be_visible()
        expect(page.get_by_text("2.3456").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "mlflow_compare.png"), full_page=True)
        assert all(i in page.url for i in ids)
        browser.close()
