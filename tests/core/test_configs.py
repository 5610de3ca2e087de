"""Every experiment config under pipelines/ loads (default and fast profiles) and names real arguments."""

import inspect
from pathlib import Path

import pytest
import yaml

from seqpipe.config import import_class, load_config

REPO = Path(__file__).resolve().parents[2]
# shared base files may be partial (no name), and _*.yaml files are fragments for base lists: both are
# checked through the experiments built on them
CONFIGS = sorted(
    p
    for p in (REPO / "pipelines").rglob("*.yaml")
    if not p.name.startswith("_") and (p.name != "base.yaml" or "name:" in p.read_text())
)


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
    import shutil

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
    shutil.copy(REPO / "pipelines/stocks/_data.yaml", tmp_path / "_data.yaml")
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
        ("model.init_args.cell=lstmm", "'model.init_args.cell' must be one of ['rnn', 'lstm', 'gru'], got 'lstmm'"),
        ("model.init_args.ngram_orders=[2, x]", "'model.init_args.ngram_orders' must be list[int] or None"),
        ("model.init_args.ngram_orders=3", "'model.init_args.ngram_orders' must be list[int] or None, got 3"),
        ("data.init_args.source=[1, 2]", "'data.init_args.source' must be str or list[str], got [1, 2]"),
        ("model.init_args.spec={}", "'model.init_args.spec' is set by seqpipe, not by configs"),
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


# -- jsonargparse validates data and model against the constructors ---------------------------------
def test_a_wrong_cell_is_refused_at_print_config_naming_the_choices(capsys):
    from seqpipe.cli import main

    argv = ["fit", "--config", str(REPO / "pipelines/text/lstm.yaml"), "--print-config"]
    assert main([*argv, "--set", "model.init_args.cell=lstmm"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert captured.out == "" and "\n" not in err
    assert "'model.init_args.cell' must be one of ['rnn', 'lstm', 'gru'], got 'lstmm'" in err
    assert "did you mean 'lstm'?" in err
    # the same Literal reaches models that forward **kwargs to RecurrentModel (CRNN, SeedGroup) and Seq2Seq
    for config in ("audio/crnn.yaml", "stocks/lstm-returns.yaml", "forecast/seq2seq.yaml"):
        assert main(["fit", "--config", str(REPO / "pipelines" / config), "--set", "model.init_args.cell=GRU"]) == 2
        assert "must be one of ['rnn', 'lstm', 'gru'], got 'GRU'" in capsys.readouterr().err


def test_cell_is_a_literal_in_the_model_constructors():
    import typing

    from seqpipe.models.core import Cell
    from seqpipe.models.recurrent import RecurrentModel
    from seqpipe.models.seq2seq import Seq2Seq

    assert typing.get_args(Cell) == ("rnn", "lstm", "gru")
    for cls in (RecurrentModel, Seq2Seq):
        assert typing.get_type_hints(cls.__init__)["cell"] == Cell, cls.__name__


def test_checked_values_keep_the_types_the_constructors_always_got():
    """Validation must not change what training sees: ints into float arguments become floats (as before),
    integral floats into int arguments ints, lists stay lists, strings stay strings."""
    cfg = load_config(
        REPO / "pipelines/text/lstm.yaml",
        ["model.init_args.lr=1", "model.init_args.warmup_steps=50.0", "model.init_args.ngram_orders=[2, 3]"],
    )
    args = cfg["model"]["init_args"]
    assert args["lr"] == 1.0 and type(args["lr"]) is float
    assert args["warmup_steps"] == 50 and type(args["warmup_steps"]) is int
    assert args["ngram_orders"] == [2, 3] and type(args["ngram_orders"]) is list
    assert type(args["ngram_buckets"]) is int and args["cell"] == "lstm" and type(args["ngram_dropout"]) is float
    stocks = load_config(REPO / "pipelines/stocks/lstm-returns.yaml")["data"]["init_args"]
    assert type(stocks["features"]) is list and stocks["val_start"] == "2009-07-01"
    audio = load_config(REPO / "pipelines/audio/crnn.yaml")["model"]["init_args"]
    assert audio["conv_channels"] == [16, 32] and type(audio["conv_channels"]) is list


def test_the_data_section_is_validated_without_torch_where_a_store_builder_exists():
    import subprocess
    import sys

    base = str(REPO / "pipelines/text/base.yaml")
    probe = (
        "import sys\n"
        "from seqpipe.config import load_config\n"
        "from seqpipe.errors import SeqpipeError\n"
        f"cfg = load_config({base!r}, data_only=True)\n"
        "try:\n"
        f"    load_config({base!r}, ['data.init_args.source=[1, 2]'], data_only=True)\n"
        "except SeqpipeError as e:\n"
        "    print('ERROR', e)\n"
        "print('MODULES', [m for m in ('torch', 'lightning', 'jsonargparse') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert "'data.init_args.source' must be str or list[str], got [1, 2]" in out
    assert "MODULES ['jsonargparse']" in out  # validated by jsonargparse, and no torch imported


# -- dates (#27) ------------------------------------------------------------------------------
def test_a_yaml_date_into_a_str_argument_is_its_iso_string(tmp_path):
    import datetime

    from seqpipe.config_types import coerce

    cfg = load_config(REPO / "pipelines/stocks/lstm-returns.yaml", ["data.init_args.val_start=2001-01-01"])
    assert cfg["data"]["init_args"]["val_start"] == "2001-01-01"
    exp = tmp_path / "exp.yaml"  # an unquoted date in a file (as `dvc exp run -S` may write it)
    based = f"base: {REPO / 'pipelines/stocks/lstm-returns.yaml'}\n"
    exp.write_text(based + "data: {init_args: {test_start: 2002-02-02}}\n")
    assert load_config(exp)["data"]["init_args"]["test_start"] == "2002-02-02"
    assert coerce(datetime.date(2003, 3, 3), str | None, "k", None) == "2003-03-03"  # a date handed in by Python


# -- class_path may name Lightning classes only (#30) ---------------------------------------------
def test_a_config_cannot_run_arbitrary_callables(tmp_path, capsys):
    from seqpipe.cli import main
    from seqpipe.config import instantiate
    from seqpipe.errors import SeqpipeError

    marker = tmp_path / "x"
    evil = tmp_path / "evil.yaml"
    run = {"class_path": "os.system", "init_args": {"command": f"touch {marker}"}}
    evil.write_text(yaml.safe_dump({"name": "evil", "domain": "text", "data": run, "model": run}))
    for argv in (["fit"], ["baselines"], ["preprocess"], ["evaluate"], ["fit", "--print-config"]):
        assert main([*argv, "--config", str(evil)]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert "'os.system' is not a LightningDataModule subclass" in err and "\n" not in err, err
    # a real datamodule, but a class that is no LightningModule as the model
    text = yaml.safe_load((REPO / "pipelines/text/lstm.yaml").read_text())
    model = {"class_path": "subprocess.Popen", "init_args": {"args": ["touch", str(marker)]}}
    (tmp_path / "popen.yaml").write_text(
        yaml.safe_dump({**text, "base": str(REPO / "pipelines/text/base.yaml"), "model": model})
    )
    assert main(["fit", "--config", str(tmp_path / "popen.yaml")]) == 2
    assert "model.class_path 'subprocess.Popen' is not a LightningModule subclass" in capsys.readouterr().err
    with pytest.raises(SeqpipeError, match="is not a LightningDataModule or LightningModule subclass"):
        instantiate(run)  # the builder refuses too, for callers that skip load_config
    assert not marker.exists()


# -- base lists --------------------------------------------------------------------------------
def test_base_lists_merge_in_order_with_a_shared_base_merged_once(tmp_path):
    from seqpipe.config import base_chain
    from seqpipe.errors import SeqpipeError

    def write(name, text):
        (tmp_path / name).write_text(text)
        return tmp_path / name

    write("root.yaml", "name: root\ndomain: text\ndata: {class_path: seqpipe.data.TextDataModule}\nseed: 1\nfit: {}\n")
    write("recipe.yaml", "base: root.yaml\nseed: 2\nfit: {grad_every_n_steps: 3}\n")
    write("corpus.yaml", "base: root.yaml\nname: corpus\nfit: {mode: max, grad_every_n_steps: 5}\n")
    exp = write("exp.yaml", "base: [recipe.yaml, corpus.yaml]\nname: exp\n")
    cfg = load_config(exp)
    # the later file wins (grad_every_n_steps 5); root is under both: merged once, first, so corpus.yaml does not
    # bring back root's seed over recipe.yaml's
    assert (cfg["name"], cfg["seed"], cfg["fit"]) == ("exp", 2, {"grad_every_n_steps": 5, "mode": "max"})
    assert [p.name for p in base_chain(exp)] == ["exp.yaml", "corpus.yaml", "recipe.yaml", "root.yaml"]
    assert load_config(write("flip.yaml", "base: [corpus.yaml, recipe.yaml]\n"))["fit"]["grad_every_n_steps"] == 3
    write("loop.yaml", "base: exp2.yaml\n")
    write("exp2.yaml", "base: [root.yaml, loop.yaml]\n")
    with pytest.raises(SeqpipeError, match="cycle") as e:
        load_config(tmp_path / "exp2.yaml")
    assert "\n" not in str(e.value)
    with pytest.raises(SeqpipeError, match="must be a file or a list of files"):
        load_config(write("bad.yaml", "base: {a: 1}\nname: x\n"))


def test_the_bible_lstm_is_the_text_recipe_on_the_bible_data():
    kjv = load_config(REPO / "pipelines/kjv/lstm.yaml")
    kjv_data = ["data.init_args.source=kjv", "data.init_args.prepared_dir=data/prepared/kjv"]
    recipe = load_config(REPO / "pipelines/text/lstm.yaml", [*kjv_data, "evaluate.baseline_key=kjv", "name=kjv-lstm"])
    assert kjv["pipeline"] == {"gradient_plot": False}  # the Bible folder's (read from its base.yaml only)
    assert {**kjv, "pipeline": None, "config_path": None} == {**recipe, "pipeline": None, "config_path": None}
    from seqpipe.dvcgen import param_entries

    files = [next(iter(e)) for e in param_entries(REPO / "pipelines/kjv/lstm.yaml", "train")]
    assert [Path(f).relative_to(REPO).as_posix() for f in files] == [
        "pipelines/kjv/lstm.yaml",
        "pipelines/kjv/base.yaml",
        "pipelines/text/lstm.yaml",
        "pipelines/text/base.yaml",
    ]


def test_forecasting_reads_the_stock_data_section():
    forecast = load_config(REPO / "pipelines/forecast/seq2seq.yaml")["data"]
    assert forecast == load_config(REPO / "pipelines/stocks/lstm-volatility.yaml")["data"]
    assert forecast["init_args"]["target"] == "volatility" and forecast["init_args"]["lookback"] == 60


# -- sweeping a value an experiment inherits (#27, docs/configs.md) ----------------------------------
def test_sweeping_an_inherited_key_with_dvc_plus_plus(tmp_path):
    """`dvc exp run -S exp.yaml:trainer.val_check_interval=10` fails when the key lives in base.yaml;
    `++trainer.val_check_interval=10` writes it into the experiment file, which wins over the base."""
    import shutil

    hydra = pytest.importorskip("dvc.utils.hydra")

    for name in ("base.yaml", "lstm.yaml", "gru.yaml"):
        shutil.copy(REPO / "pipelines/text" / name, tmp_path / name)
    exp = tmp_path / "lstm.yaml"
    with pytest.raises(Exception, match="Invalid `--set-param` value") as e:
        hydra.apply_overrides(exp, ["trainer.val_check_interval=10"])  # what plain -S does
    assert "Could not override 'trainer.val_check_interval'" in str(e.value.__cause__)  # "not in struct"
    hydra.apply_overrides(exp, ["++trainer.val_check_interval=10"])  # what -S 'file:++key=value' does
    cfg = load_config(exp)
    assert cfg["trainer"]["val_check_interval"] == 10 and cfg["trainer"]["max_steps"] == 10000
    assert load_config(tmp_path / "gru.yaml")["trainer"]["val_check_interval"] == 250  # the base is untouched
    assert (tmp_path / "base.yaml").read_text() == (REPO / "pipelines/text/base.yaml").read_text()
    assert "val_check_interval: 10" in exp.read_text() and "# Character LSTM" in exp.read_text()  # comments kept
