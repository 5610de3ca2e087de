"""The served MLflow model (seqpipe.serving): domain inputs in a DataFrame -> domain answers, for text, audio, DNA
and stocks; in-process on tiny untrained models (fast), and through `mlflow models serve` on models trained by
`seqpipe fit` (slow)."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import yaml

from helpers import text_experiment, write_corpus
from seqpipe.errors import SeqpipeError

REPO = Path(__file__).resolve().parents[2]


# -- tiny models, saved as a fit publishes them (best.ckpt + run.json) ------------------------
def save_checkpoint(model: torch.nn.Module, folder: Path) -> Path:
    """best.ckpt (a Lightning checkpoint without a trainer) and run.json naming the model class."""
    import lightning

    folder.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": dict(model.hparams),
            "pytorch-lightning_version": lightning.__version__,
        },
        folder / "best.ckpt",
    )
    cls = f"{type(model).__module__}.{type(model).__qualname__}"
    (folder / "run.json").write_text(json.dumps({"model_class": cls}))
    return folder


def ohlcv(n: int, seed: int, start: str = "2004-01-01") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.012, n)))
    spread = np.abs(rng.normal(0, 0.01, n)) + 0.002
    return pd.DataFrame(
        {
            "date": pd.bdate_range(start, periods=n).strftime("%Y-%m-%d"),
            "open": close * (1 + rng.normal(0, 0.002, n)),
            "high": close * (1 + spread),
            "low": close * (1 - spread),
            "close": close,
            "volume": rng.integers(1_000_000, 5_000_000, n),
        }
    )


def wav_bytes(seconds: float = 0.4, rate: int = 16000, freq: float = 440.0) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate, format="WAV")
    return buf.getvalue()


def tiny_text(tmp: Path) -> torch.nn.Module:
    from seqpipe.domains.text import TextDataModule
    from seqpipe.models import RecurrentModel

    write_corpus(tmp, 600)
    dm = TextDataModule(source=str(tmp / "corpus.txt"), prepared_dir=str(tmp / "prep-text"), seq_len=16)
    dm.prepare_data()
    return RecurrentModel(dm.spec.to_dict(), cell="gru", hidden_size=8, num_layers=1, data_info=dm.data_info())


def tiny_audio(tmp: Path) -> torch.nn.Module:
    from seqpipe.data.spec import DataSpec
    from seqpipe.domains.audio.features import FeatureConfig
    from seqpipe.models import CRNN

    spec = DataSpec(input="features", target="class", feature_dim=40, num_classes=3).to_dict()
    info = {
        "domain": "audio",
        "classes": ["one", "two", "three"],
        "features": FeatureConfig().to_dict(),
        "normalization": {"mean": [0.0] * 40, "std": [1.0] * 40},
    }
    return CRNN(spec=spec, conv_channels=[4], time_pool=[2], freq_pool=[2], hidden_size=8, data_info=info)


def tiny_dna(tmp: Path) -> torch.nn.Module:
    from seqpipe.domains.dna import DNADataModule
    from seqpipe.models import RecurrentModel

    rng = np.random.default_rng(0)
    fa = tmp / "tiny.fa"
    fa.write_text("".join(f">s{i} label=c{i % 2}\n{''.join(rng.choice(list('ACGT'), 40))}\n" for i in range(60)))
    dm = DNADataModule(source=str(fa), labels=None, prepared_dir=str(tmp / "prep-dna"), rc_augment=0.5)
    dm.prepare_data()
    return RecurrentModel(
        dm.spec.to_dict(),
        cell="gru",
        hidden_size=8,
        num_layers=1,
        one_hot=True,
        pooling="mean",
        data_info=dm.data_info(),
    )


def tiny_stocks(tmp: Path) -> torch.nn.Module:
    from seqpipe.domains.stocks import StockDataModule
    from seqpipe.models import RecurrentModel

    raw = tmp / "raw"
    raw.mkdir()
    ohlcv(900, 0).to_csv(raw / "AAA.csv", index=False)
    dm = StockDataModule(
        source=str(raw),
        prepared_dir=str(tmp / "prep-stocks"),
        lookback=20,
        horizon=3,
        features=["log_return", "hl_range", "volume_change", "realized_vol_5"],
        val_start="2006-01-01",
        test_start="2007-01-01",
        target="volatility",
    )
    dm.prepare_data()
    return RecurrentModel(dm.spec.to_dict(), cell="gru", hidden_size=8, num_layers=1, data_info=dm.data_info())


TINY = {"text": tiny_text, "audio": tiny_audio, "dna": tiny_dna, "stocks": tiny_stocks}


def served(domain: str, tmp: Path) -> Any:
    """The pyfunc's Python model, loaded from a checkpoint folder the way `mlflow models serve` loads it."""
    from mlflow.pyfunc import PythonModelContext

    from seqpipe.serving import CHECKPOINT, SeqpipeModel

    torch.manual_seed(0)
    folder = save_checkpoint(TINY[domain](tmp), tmp / "model")
    pm = SeqpipeModel()
    pm.load_context(PythonModelContext(artifacts={CHECKPOINT: str(folder)}, model_config={}))
    return pm


# -- in process -------------------------------------------------------------------------------
def test_text_generates_from_a_prompt_and_scores_a_text(tmp_path):
    pm = served("text", tmp_path)
    df = pd.DataFrame({"prompt": ["romeo ", "juliet "], "max_chars": [30, 10], "temperature": [0.8, 1.0]})
    out = pm.predict(None, df)
    assert list(out.columns) == ["generated"]
    assert out["generated"][0].startswith("romeo ") and len(out["generated"][0]) == len("romeo ") + 30
    assert out["generated"][1].startswith("juliet ") and len(out["generated"][1]) == len("juliet ") + 10
    assert pm.predict(None, df)["generated"].tolist() == out["generated"].tolist()  # seed 0 by default: same text
    scored = pm.predict(None, pd.DataFrame({"text": ["romeo and juliet"]}))
    vocab = len(pm.model.hparams["data_info"]["vocab"])
    assert scored["chars_scored"][0] == 15 and 0 < scored["bits_per_char"][0] < 2 * np.log2(vocab)
    # the same number by hand: log2 P of every character after the first, read in one pass
    ids = torch.tensor([[pm.model.hparams["data_info"]["vocab"].index(c) for c in "romeo and juliet"]])
    with torch.no_grad():
        logp = torch.log_softmax(pm.model(ids[:, :-1])[0][0], -1).gather(-1, ids[0, 1:, None])
    assert scored["bits_per_char"][0] == pytest.approx(float(-logp.mean()) / np.log(2), rel=1e-5)
    with pytest.raises(Exception, match=r"outside the vocabulary: \['!'\]"):
        pm.predict(None, pd.DataFrame({"prompt": ["romeo!"]}))
    with pytest.raises(Exception, match="needs a `prompt` or a `text` column"):
        pm.predict(None, pd.DataFrame({"words": ["romeo"]}))


def test_audio_labels_a_wav_by_path_or_base64_bytes(tmp_path):
    pm = served("audio", tmp_path)
    (tmp_path / "a.wav").write_bytes(wav_bytes(freq=300.0))
    b64 = base64.b64encode(wav_bytes(freq=300.0)).decode()
    out = pm.predict(None, pd.DataFrame({"path": [str(tmp_path / "a.wav"), None], "audio": [None, b64]}))
    assert list(out.columns) == ["label", "probabilities"]
    for label, probs in zip(out["label"], out["probabilities"], strict=True):
        assert list(probs) == ["one", "two", "three"] and sum(probs.values()) == pytest.approx(1, abs=1e-3)
        assert label == max(probs, key=probs.get)
    assert out["probabilities"][0] == out["probabilities"][1]  # the same clip, by path and by bytes
    with pytest.raises(Exception, match="give one of `path`"):
        pm.predict(None, pd.DataFrame({"path": [str(tmp_path / "a.wav")], "audio": [b64]}))
    with pytest.raises(Exception, match="not base64"):
        pm.predict(None, pd.DataFrame({"audio": ["not base64!"]}))


def test_dna_gives_class_probabilities_of_each_sequence(tmp_path):
    from seqpipe.domains.dna.source.alphabet import encode
    from seqpipe.domains.dna.task import predict_proba

    pm = served("dna", tmp_path)
    seqs = ["ACGTTGCAAC" * 3, "gattcaGATTCAacgt"]
    out = pm.predict(None, pd.DataFrame({"sequence": seqs}))
    assert list(out.columns) == ["predicted", "probabilities", "strands"] and list(out["strands"]) == ["both"] * 2
    fwd, rc = predict_proba(pm.model, [encode(s.encode()) for s in seqs])
    for probs, want in zip(out["probabilities"], (fwd + rc) / 2, strict=True):
        assert list(probs) == ["c0", "c1"] and np.allclose(list(probs.values()), want, atol=1e-6)
    with pytest.raises(Exception, match="invalid character 'Z'"):
        pm.predict(None, pd.DataFrame({"sequence": ["ACGTZ"]}))


def test_stocks_forecasts_h_days_per_ticker_from_ohlcv_rows(tmp_path):
    from seqpipe.domains.stocks.task import predict

    pm = served("stocks", tmp_path)
    rows = pd.concat([ohlcv(80, 1).assign(ticker="BBB"), ohlcv(60, 2).assign(ticker="CCC")], ignore_index=True)
    out = pm.predict(None, rows)
    assert list(out["ticker"]) == ["BBB", "CCC"] and all(len(f) == 3 for f in out["forecast"])
    assert out["origin_date"][0] == rows[rows.ticker == "BBB"]["date"].iloc[-1] and out["target"][0] == "volatility"
    rows[rows.ticker == "BBB"].drop(columns="ticker").to_csv(tmp_path / "BBB.csv", index=False)
    [want] = predict(pm.model, [str(tmp_path / "BBB.csv")])  # the same forecast as `seqpipe predict` on a CSV
    assert out["forecast"][0] == want["forecast"]
    with pytest.raises(Exception, match=r"need the column\(s\) \['volume'\]"):
        pm.predict(None, rows.drop(columns="volume"))


@pytest.mark.parametrize("domain", ["text", "audio", "dna", "stocks"])
def test_the_signature_takes_the_example_and_marks_every_column_optional(domain, tmp_path):
    from mlflow.types import DataType

    from seqpipe.serving import serve_hook, signature_and_example

    model = TINY[domain](tmp_path)
    signature, example = signature_and_example(model)
    assert list(signature.inputs.input_names()) == list(example.columns)
    assert not signature.inputs.required_input_names()  # alternative forms of a row: the domain checks them
    strings = {c.name for c in signature.inputs.inputs if c.type == DataType.string}
    assert strings == set(example.select_dtypes(exclude="number").columns) - {"path"}  # numbers: Any
    serve, _ = serve_hook(domain)
    assert set(signature.outputs.input_names()) == set(serve(model, example).columns)


def test_the_logged_pyfunc_takes_plain_dataframes_of_ints_and_gaps(in_tmp):
    """Through mlflow.pyfunc.load_model, signature enforced: whole numbers where the example had floats (a CSV's
    volumes), gaps where it had ints (a text row beside a prompt row's max_chars)."""
    import mlflow

    import seqpipe
    from seqpipe import serving, tracking

    mlflow.set_tracking_uri(tracking.tracking_uri())
    uris = {}
    for domain in ("text", "stocks"):
        model = TINY[domain](in_tmp)
        with mlflow.start_run() as run:
            assert serving.log_model(
                model, save_checkpoint(model, in_tmp / domain), [], [str(Path(seqpipe.__file__).parent)]
            )
        uris[domain] = f"runs:/{run.info.run_id}/model"
    text = mlflow.pyfunc.load_model(uris["text"])
    out = text.predict(pd.DataFrame({"prompt": ["romeo ", None], "max_chars": [5, None], "text": [None, "romeo and"]}))
    assert len(out["generated"][0]) == len("romeo ") + 5 and out["chars_scored"][1] == 8
    rows = ohlcv(60, 5).assign(ticker="EEE")
    assert rows["volume"].dtype.kind == "i"
    [forecast] = mlflow.pyfunc.load_model(uris["stocks"]).predict(rows)["forecast"]
    assert len(forecast) == 3


def test_a_domain_without_a_serve_hook_is_refused_and_errors_become_bad_requests(tmp_path):
    from mlflow.exceptions import MlflowException

    from seqpipe.serving import SeqpipeModel, serve_hook

    assert serve_hook("fill_blank") is None and serve_hook("text") is not None
    model = tiny_text(tmp_path)
    model.hparams["data_info"] = {**model.hparams["data_info"], "domain": "fill_blank"}
    with pytest.raises(SeqpipeError, match="domain 'fill_blank' has no serve hook"):
        SeqpipeModel().attach(model)
    (tmp_path / "again").mkdir()
    pm = SeqpipeModel().attach(tiny_text(tmp_path / "again"))
    with pytest.raises(MlflowException) as err:
        pm.predict(None, pd.DataFrame({"text": ["r"]}))
    assert err.value.error_code == "INVALID_PARAMETER_VALUE" and "too short" in str(err.value)


# -- through `seqpipe fit` and `mlflow models serve` ------------------------------------------
TRAINER = {
    "max_epochs": 1,
    "limit_train_batches": 4,
    "limit_val_batches": 1,
    "enable_progress_bar": False,
    "accelerator": "cpu",
}
FIT = {"grad_every_n_steps": 100000}


def tiny_configs(tmp: Path) -> dict[str, dict[str, Any]]:
    """One tiny experiment a domain, with its raw data written under ``tmp``."""
    from seqpipe.domains.audio.spoken_digits import generate_spoken_digits

    write_corpus(tmp, 3000)
    text = text_experiment("data/prepared/text", seq_len=16, batch_size=8, cell="gru", hidden_size=16, num_layers=1)
    rng = np.random.default_rng(0)
    (tmp / "tiny.fa").write_text(
        "".join(f">s{i} label=c{i % 2}\n{''.join(rng.choice(list('ACGT'), 40))}\n" for i in range(80))
    )
    (tmp / "raw").mkdir()
    for ticker, seed in (("AAA", 0), ("BBB", 1)):
        ohlcv(900, seed).to_csv(tmp / "raw" / f"{ticker}.csv", index=False)
    generate_spoken_digits(tmp / "digits", voices=["en+f3", "en+m1", "en+klatt", "en+Andy", "en+whisper"],
                           words=("one", "two", "three"), renditions=2, seed=0)  # fmt: skip
    small = {"cell": "gru", "hidden_size": 8, "num_layers": 1}
    return {
        "text": {**text, "fit": {**FIT, "register_model": "tiny-text"}},
        "audio": {
            "data": _data("audio.AudioDataModule", source="digits", val_fraction=0.2, test_fraction=0.2, batch_size=8),
            "model": _model("CRNN", conv_channels=[4], time_pool=[2], freq_pool=[2], hidden_size=8),
        },
        "dna": {
            "data": _data("dna.DNADataModule", source="tiny.fa", labels=None, batch_size=16),
            "model": _model("RecurrentModel", **small, one_hot=True, pooling="mean"),
        },
        "stocks": {
            "data": _data(
                "stocks.StockDataModule",
                source="raw",
                lookback=20,
                horizon=3,
                features=["log_return", "hl_range", "volume_change", "realized_vol_5"],
                val_start="2006-01-01",
                test_start="2007-01-01",
                target="volatility",
                batch_size=16,
            ),
            "model": _model("RecurrentModel", **small),
        },
    }


def _data(class_path: str, **init_args: Any) -> dict[str, Any]:
    name = class_path.split(".")[0]
    return {
        "class_path": f"seqpipe.domains.{class_path}",
        "init_args": {"prepared_dir": f"data/prepared/{name}", **init_args},
    }


def _model(name: str, **init_args: Any) -> dict[str, Any]:
    return {"class_path": f"seqpipe.models.{name}", "init_args": init_args}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ModelServer:
    """`mlflow models serve --env-manager local` on 127.0.0.1 in its own process group (killed by ``stop``)."""

    def __init__(self, uri: str, env: dict[str, str], log: Path):
        self.port, self.log = free_port(), log
        cmd = [sys.executable, "-m", "mlflow", "models", "serve", "--env-manager", "local", "-m", uri]
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [*cmd, "-h", "127.0.0.1", "-p", str(self.port), "-w", "1"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait(self, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the model server exited: {self.log.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ping", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(1.0)
        raise AssertionError(f"no answer on /ping after {timeout:.0f} s: {self.log.read_text()[-3000:]}")

    def post(self, payload: dict[str, Any]) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/invocations",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def stop(self) -> None:
        import signal

        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            if self.proc.poll() is not None:
                return
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=wait)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue


@pytest.mark.slow
def test_mlflow_models_serve_answers_domain_inputs_of_every_domain(in_tmp):
    import mlflow

    from seqpipe.cli import main

    uris = {}
    for domain, cfg in tiny_configs(in_tmp).items():
        name = f"tiny-{domain}"
        doc = {"name": name, "domain": domain, "seed": 0, "trainer": TRAINER, "fit": FIT, **cfg}
        (in_tmp / f"{name}.yaml").write_text(yaml.safe_dump(doc))
        assert main(["preprocess", "--config", f"{name}.yaml"]) == 0
        assert main(["fit", "--config", f"{name}.yaml"]) == 0
        run_id = json.loads((in_tmp / f"models/{name}.training.json").read_text())["mlflow_run_id"]
        uris[domain] = f"runs:/{run_id}/{name}"  # the model is named after its experiment
    tracking = f"sqlite:///{in_tmp / 'mlruns/mlflow.db'}"
    client = mlflow.MlflowClient(tracking)
    (version,) = client.search_model_versions("name='tiny-text'")
    client.set_registered_model_alias("tiny-text", "champion", version.version)
    uris["text"] = "models:/tiny-text@champion"  # the registry's form; the others by run

    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # the server runs `uvicorn`
    servers = {d: ModelServer(uri, env, in_tmp / f"serve-{d}.log") for d, uri in uris.items()}
    try:
        for server in servers.values():
            server.wait()
        _ask_every_domain(servers, in_tmp)
    finally:
        for server in servers.values():
            server.stop()
    assert all(s.proc.poll() is not None for s in servers.values())


def _ask_every_domain(servers: dict[str, ModelServer], tmp: Path) -> None:
    status, out = servers["text"].post(
        {"dataframe_split": {"columns": ["prompt", "max_chars"], "data": [["romeo ", 20], ["juliet ", 5]]}}
    )
    assert status == 200, out
    generated = [p["generated"] for p in out["predictions"]]
    assert generated[0].startswith("romeo ") and len(generated[0]) == 26 and len(generated[1]) == len("juliet ") + 5
    status, out = servers["text"].post({"dataframe_records": [{"text": "romeo and juliet"}]})
    assert status == 200 and out["predictions"][0]["chars_scored"] == 15 and out["predictions"][0]["bits_per_char"] > 0
    status, out = servers["text"].post({"dataframe_records": [{"prompt": "romeo!"}]})
    assert status == 400 and "outside the vocabulary" in out["message"]

    wavs = sorted((tmp / "digits").rglob("*.wav"))
    b64 = base64.b64encode(wavs[-1].read_bytes()).decode()
    status, out = servers["audio"].post({"dataframe_records": [{"path": str(wavs[0])}, {"audio": b64}]})
    assert status == 200, out
    for p in out["predictions"]:
        assert sorted(p["probabilities"]) == ["one", "three", "two"] and p["label"] in p["probabilities"]
        assert sum(p["probabilities"].values()) == pytest.approx(1, abs=1e-3)

    status, out = servers["dna"].post(
        {"dataframe_split": {"columns": ["sequence"], "data": [["ACGT" * 10], ["GATTACA"]]}}
    )
    assert status == 200 and len(out["predictions"]) == 2, out
    for p in out["predictions"]:
        assert list(p["probabilities"]) == ["c0", "c1"] and sum(p["probabilities"].values()) == pytest.approx(
            1, abs=1e-5
        )
        assert p["predicted"] == max(p["probabilities"], key=p["probabilities"].get)

    rows = pd.concat([ohlcv(60, 3).assign(ticker="CCC"), ohlcv(70, 4).assign(ticker="DDD")], ignore_index=True)
    status, out = servers["stocks"].post({"dataframe_split": json.loads(rows.to_json(orient="split", index=False))})
    assert status == 200, out
    assert [p["ticker"] for p in out["predictions"]] == ["CCC", "DDD"]
    assert all(len(p["forecast"]) == 3 and all(v >= 0 for v in p["forecast"]) for p in out["predictions"])
    assert out["predictions"][1]["origin_date"] == rows["date"].iloc[-1]
