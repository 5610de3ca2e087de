"""preprocess -> fit -> baselines -> evaluate -> generate through the CLI, in a temporary directory."""

import json

import numpy as np
import pytest
import yaml

from helpers import text_experiment, write_corpus
from seqpipe.cli import main


@pytest.fixture
def text_config(in_tmp):
    write_corpus(in_tmp, 6000)
    cfg = {
        "name": "tiny-lstm",
        **text_experiment(
            "data/prepared/tiny",
            seq_len=32,
            batch_size=16,
            cell="lstm",
            hidden_size=32,
            num_layers=1,
            embedding_dim=16,
            lr=0.01,
        ),
        "trainer": {
            "max_steps": 30,
            "val_check_interval": 10,
            "limit_val_batches": 2,
            "enable_progress_bar": False,
            "accelerator": "cpu",
        },
        "fit": {"grad_every_n_steps": 10},
        "evaluate": {"ngram_max_order": 4, "lanes": 4, "sample_length": 50, "dynamic": True, "dynamic_lrs": [0.1, 1]},
    }
    (in_tmp / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    return in_tmp


def test_text_pipeline_end_to_end(text_config, capsys):
    tmp = text_config
    assert main(["preprocess", "--config", "tiny.yaml"]) == 0
    assert main(["fit", "--config", "tiny.yaml"]) == 0
    run = json.loads((tmp / "models/tiny-lstm/run.json").read_text())
    assert run["global_steps"] == 30 and (tmp / "models/tiny-lstm/best.ckpt").exists()
    curve = (tmp / "models/tiny-lstm/learning_curve.csv").read_text().splitlines()
    assert curve[0] == "step,epoch,train_loss,val_loss" and [r.split(",")[0] for r in curve[1:]] == ["10", "20", "30"]
    curves = (tmp / "models/tiny-lstm/grad_through_time.csv").read_text().splitlines()
    assert curves[0] == "step,t,grad_norm" and len(curves) == 1 + 4 * 32  # steps 1, 10, 20, 30; T = 32 each

    assert main(["baselines", "--config", "tiny.yaml"]) == 0
    assert main(["evaluate", "--config", "tiny.yaml"]) == 0
    m = json.loads((tmp / "reports/tiny-lstm/evaluation.json").read_text())
    assert m["primary_metric"] == "test_bpc" and m["direction"] == "lower"
    report = json.loads((tmp / "reports/tiny-lstm/run.json").read_text())
    training = json.loads((tmp / "models/tiny-lstm.training.json").read_text())
    assert report["mlflow_run_id"] == training["mlflow_run_id"] and report["train_seconds"] > 0
    assert not any(k.endswith("seconds") or k == "mlflow_run_id" for k in run)  # the model folder: config + seed only
    assert not any(k.endswith("seconds") or k == "mlflow_run_id" for k in m)  # metrics: model numbers only
    assert m["truncated_by_time"] is False
    assert 0 < m["model"]["test_bpc"] < np.log2(20)  # better than uniform over the vocabulary
    assert m["best_baseline"].startswith("kn")
    # a 10-word random corpus: the n-gram must be near the entropy of a uniform word choice
    assert m["baselines"][m["best_baseline"]]["test_bpc"] < 2.0
    margin = m["margin"]  # model - best n-gram, characters resampled in blocks; the file's last key
    assert (
        list(m)[-1] == "margin" and margin["vs"] == m["best_baseline"] and margin["block"] == 4 * 256
    )  # 4 default windows
    assert margin["value"] == pytest.approx(m["model"]["test_bpc"] - m["baselines"][m["best_baseline"]]["test_bpc"])
    assert margin["ci95"][0] <= margin["value"] <= margin["ci95"][1]
    ((variant, mix),) = m["variants"].items()  # the model + n-gram mixture, weight chosen on val
    val_by_w = m["mixture_val_bpc_by_weight"]
    assert variant == f"tiny-lstm+kn{m['ngram_best_order_on_val']}" and 0 <= mix["mixture_weight_on_model"] <= 1
    assert val_by_w[str(mix["mixture_weight_on_model"])] == min(val_by_w.values())
    from seqpipe.stages import summary

    table = summary(tmp / "metrics")
    assert f"| {variant} | text |" in table  # a row of its own beside the model's
    # dynamic evaluation: apart from the static rows, beside the n-gram with a cache, settings chosen on val
    dyn = m["dynamic_evaluation"]
    model_dyn, cached = dyn["model"], dyn["ngram"]
    assert model_dyn["name"] == "tiny-lstm" and cached["name"] == f"kn{m['ngram_best_order_on_val']}+cache"
    assert str(model_dyn["lr"]) == min(model_dyn["val_bpc_by_lr"], key=model_dyn["val_bpc_by_lr"].get)
    assert 0 < model_dyn["test_bpc"] < np.log2(20) and 0 < cached["test_bpc"] < np.log2(20)
    assert 0 <= cached["cache_weight"] <= 0.8 and cached["cache_order"] >= 2
    static_rows, dynamic_rows = table.split("Dynamic evaluation")
    assert "| tiny-lstm | " in dynamic_rows and "+cache" not in static_rows

    capsys.readouterr()
    assert (
        main(["generate", "--ckpt", "models/tiny-lstm/best.ckpt", "--prompt", "romeo", "--length", "30", "--seed", "1"])
        == 0
    )
    first = capsys.readouterr().out
    main(["generate", "--ckpt", "models/tiny-lstm/best.ckpt", "--prompt", "romeo", "--length", "30", "--seed", "1"])
    assert capsys.readouterr().out == first and first.startswith("romeo") and len(first.strip()) >= 30
    assert main(["generate", "--ckpt", "models/tiny-lstm/best.ckpt", "--prompt", "ROMEO!"]) == 2
    assert "'!'" in capsys.readouterr().err

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlruns/mlflow.db'}")
    r = mlflow.get_run(training["mlflow_run_id"])
    assert r.info.run_name == "tiny-lstm"
    metrics = r.data.metrics  # MLflow's names (seqpipe.runlog): grouped by split, Lightning's keys unchanged
    assert {"train/loss", "val/loss", "val/bpc", "test/bpc", "train/lr-AdamW"} <= set(metrics)
    assert "zz_grad_through_time/log10_ratio_first_to_last" in metrics
    assert metrics["test/dynamic_bpc"] == m["dynamic_evaluation"]["model"]["test_bpc"]
    assert metrics["test/dynamic_ngram_bpc"] == m["dynamic_evaluation"]["ngram"]["test_bpc"]
    (mixed,) = m["variants"].values()  # the model + n-gram mixture, under a name MLflow accepts
    assert metrics["test/mixture_bpc"] == mixed["test_bpc"]
    assert r.data.tags["data_fingerprint"] == m["data_fingerprint"]
    (dataset,) = [d.dataset for d in r.inputs.dataset_inputs]  # the Dataset column of the runs table
    assert dataset.digest == m["data_fingerprint"][:16] and dataset.name == "tiny"  # the prepared store
    assert mlflow.get_experiment(r.info.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    from seqpipe.runlog_eval import logged_model_id

    model_id = logged_model_id(mlflow.MlflowClient(), r.info.run_id, "tiny-lstm")  # named after the experiment
    served = mlflow.pyfunc.load_model(f"models:/{model_id}")  # domain inputs (docs/serving.md)
    import pandas as pd
    import torch

    assert served.predict(pd.DataFrame({"prompt": ["romeo"], "max_chars": [10]}))["generated"][0].startswith("romeo")
    model = served.unwrap_python_model().model  # the network itself
    vocab = json.loads(r.data.params["data.spec"])["vocab_size"]
    assert model(torch.zeros(1, 5, dtype=torch.long))[0].shape == (1, 5, vocab)
    assert mlflow.MlflowClient().get_model_version_by_alias("tiny-lstm", "best").run_id == r.info.run_id

    assert main(["summary"]) == 0
    assert "tiny-lstm" in (tmp / "metrics/summary.md").read_text()
    capsys.readouterr()
    assert main(["compare"]) == 0 and main(["compare", "--mlflow"]) == 0
    from_metrics, from_mlflow = (part.splitlines()[1] for part in capsys.readouterr().out.split("experiment ")[1:])
    assert from_metrics.split()[:2] == from_mlflow.split()[:2] == ["tiny-lstm", "test_bpc"]
    assert float(from_metrics.split()[5]) == pytest.approx(float(from_mlflow.split()[5]))  # the same margin


def test_resume_from_last_checkpoint(text_config):
    tmp = text_config
    assert main(["preprocess", "--config", "tiny.yaml"]) == 0
    assert main(["fit", "--config", "tiny.yaml", "--set", "trainer.max_steps=10", "--set", "name=first"]) == 0
    assert (tmp / "models/first/last.ckpt").exists()
    assert (
        main(
            [
                "fit",
                "--config",
                "tiny.yaml",
                "--set",
                "trainer.max_steps=20",
                "--set",
                "name=resumed",
                "--resume",
                "models/first/last.ckpt",
            ]
        )
        == 0
    )
    run = json.loads((tmp / "models/resumed/run.json").read_text())
    assert run["global_steps"] == 20  # continued from step 10, not restarted
    assert (
        main(
            [
                "fit",
                "--config",
                "tiny.yaml",
                "--set",
                "trainer.max_steps=10",
                "--set",
                "name=registered",
                "--set",
                "fit.register_model=tiny-text",
            ]
        )
        == 0
    )
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlruns/mlflow.db'}")
    (version,) = mlflow.MlflowClient().search_model_versions("name='tiny-text'")
    assert version.run_id == json.loads((tmp / "models/registered.training.json").read_text())["mlflow_run_id"]
    assert (tmp / "models/first/best.ckpt").exists()  # the first run's outputs are untouched


def test_fit_refuses_tbptt_on_the_data_without_it_on_the_model(text_config, capsys):
    """Stream-ordered windows fed to a model that resets its state would train silently worse."""
    assert main(["preprocess", "--config", "tiny.yaml"]) == 0
    assert main(["fit", "--config", "tiny.yaml", "--set", "model.init_args.tbptt=false"]) == 2
    err = capsys.readouterr().err
    assert "data.tbptt=True but model.tbptt=False" in err and "same value" in err
    assert not (text_config / "models/tiny-lstm").exists() and not (text_config / "models/.tiny-lstm.tmp").exists()


def test_fit_with_a_seed_other_than_the_datamodules(text_config):
    """`dvc exp run -S train.seed=1` passes --set seed=1: its MLflow param must not collide with the
    datamodule's seed."""
    assert main(["preprocess", "--config", "tiny.yaml"]) == 0
    assert main(["fit", "--config", "tiny.yaml", "--set", "seed=1", "--set", "trainer.max_steps=10"]) == 0
    run = json.loads((text_config / "models/tiny-lstm/run.json").read_text())
    assert run["global_steps"] == 10
