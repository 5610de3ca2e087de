"""Every experiment config under pipelines/ loads (default and fast profiles) and names real arguments."""

import inspect
from pathlib import Path

import pytest
import yaml

from seqpipe.config import import_class, load_config

REPO = Path(__file__).resolve().parents[1]
# shared base files may be partial (no name); they are checked through the experiments built on them
CONFIGS = sorted(p for p in (REPO / "pipelines").rglob("*.yaml") if p.name != "base.yaml" or "name:" in p.read_text())


def accepted(cls) -> tuple[set[str], bool]:
    params = {}
    for klass in cls.__mro__:  # subclasses may forward **kwargs to a base
        if "__init__" in vars(klass):
            params.update(inspect.signature(klass.__init__).parameters)
            if not any(p.kind is p.VAR_KEYWORD for p in inspect.signature(klass.__init__).parameters.values()):
                break
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    return set(params), var_kw


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(REPO / "pipelines")) for p in CONFIGS])
@pytest.mark.parametrize("profile", ["default", "fast"])
def test_config_loads_and_arguments_exist(path, profile):
    cfg = load_config(path, profile=profile)
    for section in ("data", "model"):
        if "class_path" not in cfg.get(section, {}):  # e.g. a base file used only for preprocessing
            continue
        cls = import_class(cfg[section]["class_path"])
        names, var_kw = accepted(cls)
        unknown = set(cfg[section].get("init_args") or {}) - names
        assert var_kw or not unknown, f"{path.name}: {section} args {unknown} not accepted by {cls.__name__}"


# -- a config that checks itself --------------------------------------------------------------
def test_yaml_1_2_numbers_and_durations(tmp_path):
    from seqpipe.config import parse_value

    assert parse_value("5e-05") == 5e-05 and parse_value("1e-3") == 0.001 and parse_value("3") == 3
    assert parse_value("1:00:00:00") == "1:00:00:00"  # not YAML 1.1's sexagesimal 216000
    assert parse_value("%d/%m/%Y") == "%d/%m/%Y"  # no YAML value: the text itself
    cfg = load_config(
        REPO / "pipelines/stocks/lstm-returns.yaml", ["model.init_args.lr=0.00005", "trainer.max_time=90", "seed=1.0"]
    )
    assert cfg["model"]["init_args"]["lr"] == 5e-05 and isinstance(cfg["model"]["init_args"]["lr"], float)
    assert cfg["trainer"]["max_time"] == "00:00:01:30" and cfg["seed"] == 1
    # DVC's `exp run -S` writes a small float as 5e-05 in the YAML: it must load as a float
    text = (
        (REPO / "pipelines/stocks/lstm-returns.yaml")
        .read_text()
        .replace("name: stocks-lstm-returns", "name: stocks-lstm-returns\nseed: 2")
    )
    (tmp_path / "base.yaml").write_text(
        (REPO / "pipelines/stocks/base.yaml").read_text().replace("lr: 0.003", "lr: 5e-05")
    )
    (tmp_path / "exp.yaml").write_text(text)
    assert load_config(tmp_path / "exp.yaml")["model"]["init_args"]["lr"] == 5e-05


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "model.init_args.hiden_size=3",
            "unknown config key 'model.init_args.hiden_size' Fix: did you mean 'model.init_args.hidden_size'?",
        ),
        ("trainer.max_step=3", "did you mean 'trainer.max_steps'?"),
        ("fit.grad_every=3", "did you mean 'fit.grad_every_n_steps'?"),
        ("evaluate.ngram_max=3", "did you mean 'evaluate.ngram_max_order'?"),
        ("data.init_args.seq_lenn=3", "did you mean 'data.init_args.seq_len'?"),
        ("sed=1", "did you mean 'seed'?"),
        ("model.init_args.lr=fast", "'model.init_args.lr' must be float, got 'fast'"),
        ("trainer.max_time=soon", "is not DD:HH:MM:SS"),
    ],
)
def test_a_wrong_key_or_value_is_a_one_line_error(override, message):
    from seqpipe.errors import SeqpipeError

    with pytest.raises(SeqpipeError) as e:
        load_config(REPO / "pipelines/text/lstm.yaml", [override])
    assert message in str(e.value) and "\n" not in str(e.value)


def test_set_wins_over_a_profile_and_print_config(capsys):
    from seqpipe.cli import main

    cfg = load_config(REPO / "pipelines/text/lstm.yaml", ["trainer.max_steps=7"], profile="fast")
    assert cfg["trainer"]["max_steps"] == 7  # the fast profile sets 20; the explicit --set wins
    assert load_config(REPO / "pipelines/text/lstm.yaml", profile="fast")["trainer"]["max_steps"] == 20
    assert (
        main(
            [
                "fit",
                "--config",
                str(REPO / "pipelines/text/lstm.yaml"),
                "--set",
                "model.init_args.lr=1e-3",
                "--print-config",
            ]
        )
        == 0
    )
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["init_args"]["lr"] == 0.001 and printed["name"] == "text-lstm"
