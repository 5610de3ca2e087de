"""What an MLflow run holds (seqpipe.runlog, docs/tracking.md): the whole config as dotted params and config.yaml,
metric names that group, baselines in a run of their own, the registered model and its ``best`` alias."""

import json

import pytest
import yaml

from helpers import text_experiment, write_corpus
from seqpipe import runlog
from seqpipe.config import load_config


def evaluation_metric_names_group_and_gradients_sort_last():
    names = {k: runlog.metric_name(k) for k in ("train_loss", "val_loss", "val_bpc", "lr-AdamW", "grad_h_log10_ratio")}
    assert names == {
        "train_loss": "train/loss",
        "val_loss": "val/loss",
        "val_bpc": "val/bpc",
        "lr-AdamW": "train/lr-AdamW",
        "grad_h_log10_ratio": "zz_grad_through_time/log10_ratio_first_to_last",
    }
    assert runlog.evaluation_metric_name("test_bpc") == "test/bpc"
    assert runlog.evaluation_metric_name("mixture_test_bpc") == "test/mixture_bpc"
    curve = runlog.grad_curve_name(500)
    shown = sorted([curve, *names.values(), "test/bpc", "system/cpu_utilization_percentage"])
    assert shown[-2:] == sorted([curve, names["grad_h_log10_ratio"]])  # after every other group, either sort
    assert sorted(s.lower() for s in shown)[-2:] == sorted([curve, names["grad_h_log10_ratio"]])


@pytest.mark.parametrize("path", ["pipelines/text/lstm.yaml", "pipelines/stocks/gru-returns.yaml"])
@pytest.mark.parametrize("profile", ["default", "fast"])
def test_config_yaml_reads_back_as_the_same_config(path, profile, tmp_path):
    from conftest import REPO

    cfg = load_config(REPO / path, profile=profile)
    (tmp_path / "config.yaml").write_text(runlog.resolved_yaml(cfg))
    back = load_config(tmp_path / "config.yaml")
    assert {k: back.get(k) for k in runlog.CONFIG_KEYS} == {k: cfg.get(k) for k in runlog.CONFIG_KEYS}
    params = runlog.flat_params(cfg)
    assert all(params[f"trainer.{k}"] == str(v) for k, v in cfg["trainer"].items())
    assert params["profile"] == profile and params["seed"] == str(cfg["seed"])
    assert params["data.init_args.prepared_dir"] == cfg["data"]["init_args"]["prepared_dir"]
    sections = {"data", "model", "trainer", "fit", "evaluate", "seed", "profile", "config"}
    assert {p.split(".")[0] for p in params} == sections


@pytest.mark.slow
def test_two_fits_differ_in_exactly_the_changed_param(in_tmp, recwarn, capsys):
    from mlflow.tracking import MlflowClient

    from seqpipe.cli import main

    write_corpus(in_tmp, 4000)
    cfg = {
        "name": "params",
        **text_experiment("data/prepared/tiny", seq_len=16, batch_size=8, cell="gru", hidden_size=8, embedding_dim=8),
        "trainer": {"max_steps": 10, "val_check_interval": 5, "limit_val_batches": 1, "accelerator": "cpu"},
        "fit": {"grad_every_n_steps": 5},
        "evaluate": {"ngram_max_order": 2, "lanes": 2, "sample_length": 5, "mixture": False},
    }
    (in_tmp / "params.yaml").write_text(yaml.safe_dump(cfg))
    ids = []
    assert main(["preprocess", "--config", "params.yaml"]) == 0
    for steps in (10, 20):
        capsys.readouterr()
        assert main(["fit", "--config", "params.yaml", "--set", f"trainer.max_steps={steps}"]) == 0
        err = capsys.readouterr().err
        ids.append(json.loads((in_tmp / "models/params.training.json").read_text())["mlflow_run_id"])
        assert err.count(f"runs/{ids[-1]}") == 1  # the run's link once
        assert "Tip" not in err and "litlogger" not in err
    noise = ("exists and is not empty", "LeafSpec")
    assert not [w for w in recwarn if any(n in str(w.message) for n in noise)]
    client = MlflowClient(f"sqlite:///{in_tmp / 'mlruns/mlflow.db'}")
    first, second = (client.get_run(i) for i in ids)
    p1, p2 = first.data.params, second.data.params
    assert {k for k in p1.keys() | p2.keys() if p1.get(k) != p2.get(k)} == {"trainer.max_steps"}
    assert p2["trainer.max_steps"] == "20" and p2["model.init_args.cell"] == "gru" and p2["seed"] == "0"
    assert p2["trainer.precision"] == "32-true" and p2["model.init_args.dropout"] == "0.0"  # resolved, defaults too
    assert "cell" not in p2 and "data" not in p2  # no undotted copies, no JSON blob of a section
    # config.yaml: the resolved config, which `seqpipe fit --config` reads back
    saved = client.download_artifacts(ids[1], "config.yaml", str(in_tmp))
    back = load_config(saved)
    assert back["trainer"]["max_steps"] == 20 and back["model"] == load_config("params.yaml")["model"]
    # metric names: Lightning's keys stay in learning_curve.csv, MLflow gets grouped names
    metrics = set(second.data.metrics)
    assert {"train/loss", "val/loss", "val/bpc", "train/lr-AdamW"} <= metrics and "train_loss" not in metrics
    assert (in_tmp / "models/params/learning_curve.csv").read_text().startswith("step,epoch,train_loss,val_loss")
    curves = sorted(m for m in metrics if m.startswith(f"{runlog.GRAD_PREFIX}/at_step_"))
    assert len(curves) == 5  # steps 1, 5, 10, 15, 20; MLflow's step is the time step t
    assert [m.step for m in client.get_metric_history(ids[1], curves[-1])] == list(range(1, 17))
    # baselines: a run of their own; evaluate: test/* metrics linked to the logged model, the best alias
    assert main(["baselines", "--config", "params.yaml"]) == 0
    assert main(["evaluate", "--config", "params.yaml"]) == 0
    m = json.loads((in_tmp / "reports/params/evaluation.json").read_text())
    (base,) = client.search_runs([second.info.experiment_id], "tags.run_kind = 'baselines'")
    assert base.info.run_name == "baselines-text"
    assert base.data.metrics[f"{m['best_baseline']}/test/bpc"] == m["baselines"][m["best_baseline"]]["test_bpc"]
    run = client.get_run(ids[1])
    assert run.data.metrics["test/bpc"] == m["model"]["test_bpc"]
    margin = m["baselines"][m["best_baseline"]]["test_bpc"] - m["model"]["test_bpc"]
    assert run.data.metrics["test/margin_vs_best_baseline"] == pytest.approx(margin)
    assert not any(k.startswith(("baseline", "kn")) for k in run.data.metrics)  # not copied into the model run
    assert run.data.params["evaluate.primary_metric"] == "test_bpc"
    (model,) = client.search_logged_models([run.info.experiment_id], filter_string=f"source_run_id = '{ids[1]}'")
    assert model.name == "params"
    linked = {x.key: x for x in model.metrics}
    assert linked["test/bpc"].value == m["model"]["test_bpc"] and linked["test/bpc"].dataset_name == "tiny"
    versions = client.search_model_versions("name = 'params'")
    assert sorted(int(v.version) for v in versions) == [1, 2]  # a version a fit
    assert client.get_model_version_by_alias("params", "best").run_id == ids[1]  # the only one evaluated
