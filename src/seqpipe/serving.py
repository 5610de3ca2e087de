"""The MLflow model a fit logs: a pyfunc that takes domain inputs (a prompt, a WAV, a DNA sequence, OHLCV rows).

``mlflow models serve`` on a bare network answers only tensors of token ids or log-mel frames; this model carries
its checkpoint (best.ckpt + run.json, an artifact) and, through the checkpoint's ``data_info``, everything its
domain needs to turn a request into model inputs (vocabulary, featurizer settings, normalization). The domain
is found by name through seqpipe.registry: its task module names a serve hook (``SERVE = "module:serve"``), a
``serve(model, df) -> DataFrame`` whose module also defines ``serve_example(data_info) -> DataFrame`` (an input
example in domain terms, sized for that model). A domain without a hook keeps the plain mlflow.pytorch model
(tensor in, tensor out), as before.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd  # at the top: MLflow resolves predict's type hints in this module

from seqpipe import registry
from seqpipe.errors import SeqpipeError
from seqpipe.models.loading import load_model

CHECKPOINT = "checkpoint"  # the artifact: a folder holding best.ckpt and run.json (load_model reads the class there)


def serve_hook(domain: str | None) -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    """(serve, serve_example) of a domain that names a ``SERVE`` hook, else None."""
    target = getattr(registry.task(domain), "SERVE", None) if domain else None
    if target is None:
        return None
    module_name, _, func = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, func), module.serve_example


class SeqpipeModel(mlflow.pyfunc.PythonModel):
    """A seqpipe checkpoint behind its domain's serve hook: DataFrame of domain inputs in, DataFrame out."""

    def load_context(self, context: Any) -> None:
        self.attach(load_model(Path(context.artifacts[CHECKPOINT]) / "best.ckpt"))

    def attach(self, model: Any) -> SeqpipeModel:
        """Use ``model`` (a loaded seqpipe model) and its domain's hook; ``self.model`` is the network."""
        domain = (model.hparams.get("data_info") or {}).get("domain")
        hook = serve_hook(domain)
        if hook is None:
            raise SeqpipeError(f"domain {domain!r} has no serve hook", fix="log it as an mlflow.pytorch model")
        self.model, self._serve = model.eval(), hook[0]
        return self

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        df = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        try:
            return self._serve(self.model, df.reset_index(drop=True))
        except SeqpipeError as e:  # the caller's input: a 400 from the scoring server, with the one-line reason
            raise MlflowException(str(e), error_code=INVALID_PARAMETER_VALUE) from e


def signature_and_example(model: Any) -> tuple[Any, Any] | None:
    """The domain's input example for this model and the signature inferred from it and its answer, or None."""
    from mlflow.models import infer_signature
    from mlflow.types import Schema

    info = model.hparams.get("data_info") or {}
    hook = serve_hook(info.get("domain"))
    if hook is None:
        return None
    serve, example_of = hook
    example = example_of(info)
    signature = infer_signature(example, serve(model.eval(), example))
    signature.inputs = Schema([_loose(c) for c in signature.inputs.inputs])
    return signature, example


def _loose(col: Any) -> Any:
    """Every column optional: a domain takes alternative forms of a row (a prompt or a text, a path or the bytes)
    and answers a missing column itself. Numbers of any type: MLflow refuses int64 where the example had float64
    (a CSV of whole-number volumes) and a gap where it had int64 (a text row beside a prompt row's max_chars),
    before the domain, which checks the values itself, sees them."""
    from mlflow.types import ColSpec, DataType
    from mlflow.types.schema import AnyType

    numeric = col.type in (DataType.integer, DataType.long, DataType.float, DataType.double)
    return ColSpec(AnyType() if numeric else col.type, col.name, required=False)


def log_model(
    model: Any, model_dir: Path, pip_requirements: list[str], code_paths: list[str], name: str = "model"
) -> Any:
    """Log the served pyfunc as ``name`` under the active MLflow run (``runs:/<id>/<name>``); its ModelInfo, or None
    when the domain has no serve hook."""
    found = signature_and_example(model)
    if found is None:
        return None
    signature, example = found
    with tempfile.TemporaryDirectory() as tmp:
        ckpt_dir = Path(tmp) / CHECKPOINT
        ckpt_dir.mkdir()
        for part in ("best.ckpt", "run.json", "checksums.json"):  # the hash travels with the checkpoint
            if (model_dir / part).exists():
                shutil.copy2(model_dir / part, ckpt_dir / part)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=SeqpipeModel(),
            artifacts={CHECKPOINT: str(ckpt_dir)},
            signature=signature,
            input_example=example,
            pip_requirements=pip_requirements,
            code_paths=code_paths,
        )
