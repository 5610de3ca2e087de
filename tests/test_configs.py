"""Every experiment config under pipelines/ loads (default and fast profiles) and names real arguments."""

import inspect
from pathlib import Path

import pytest

from seqpipe.config import import_class, load_config

REPO = Path(__file__).resolve().parents[1]
# shared base files may be partial (no name); they are checked through the experiments built on them
CONFIGS = sorted(p for p in (REPO / "pipelines").rglob("*.yaml")
                 if p.name != "base.yaml" or "name:" in p.read_text())


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
