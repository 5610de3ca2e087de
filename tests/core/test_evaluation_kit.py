"""The evaluation kit: one classification_metrics for every domain, the val pick, the typed Evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seqpipe.evaluation import Evaluation, Reported
from seqpipe.evaluation.classify import LABEL_METRICS, classification_metrics
from seqpipe.evaluation.select import pick_on_val


def test_label_metrics_keys_order_and_values():
    y, p = np.array([0, 0, 0, 1, 1, 2]), np.array([0, 0, 1, 1, 1, 0])
    m = classification_metrics(y, p, report=LABEL_METRICS, classes=["a", "b", "c"])
    assert list(m) == ["test_accuracy", "test_macro_f1", "test_recall_a", "test_recall_b", "test_recall_c"]
    assert m["test_accuracy"] == 4 / 6 and m["test_recall_a"] == 2 / 3 and m["test_recall_c"] == 0.0


def test_ranking_metrics_binary_multiclass_and_one_class():
    y = np.array([0, 1, 1, 0])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    m = classification_metrics(y, probs=probs, prefix="val_", suffix="_fwd")
    assert list(m) == ["val_accuracy_fwd", "val_balanced_accuracy_fwd", "val_auroc_fwd", "val_auprc_fwd"]
    assert m["val_accuracy_fwd"] == 0.5 and m["val_auroc_fwd"] == 0.75
    one = classification_metrics(np.array([1, 1]), probs=probs[:2])
    assert (
        math.isnan(one["test_auroc"])
        and math.isnan(one["test_auprc"])
        and list(one)[2:] == ["test_auroc", "test_auprc"]
    )


def test_pick_on_val_keeps_the_first_of_equals_and_every_score():
    fitted = []
    best = pick_on_val(
        [0.1, 1.0, 10.0], lambda c: fitted.append(c) or c * 2, lambda c, m: {0.1: 0.5, 1.0: 0.8, 10.0: 0.8}[c]
    )
    assert (best.params, best.model, best.score) == (1.0, 2.0, 0.8) and fitted == [0.1, 1.0, 10.0]
    assert best.scores == [(0.1, 0.5), (1.0, 0.8), (10.0, 0.8)]
    low = pick_on_val([1, 2, 3], lambda c: c, lambda c, m: abs(c - 2), higher_is_better=False)
    assert low.params == 2
    keyed = pick_on_val([1, 2], lambda c: c, lambda c, m: {"a": 0.5, "b": c}, key=lambda s: (s["a"], s["b"]))
    assert keyed.params == 2


def _evaluation(**kw):
    return Evaluation(task="t", primary_metric="m", direction="lower", model={"m": 1.0}, baselines={}, **kw)


def test_typed_sections_keep_their_place_in_the_metrics_file():
    handed = _evaluation(extra={"a": 1, "variants": {"x+kn": {"m": 0.5}}, "b": 2, "dynamic_evaluation": {"d": 1}})
    assert handed.variants == {"x+kn": {"m": 0.5}} and handed.dynamic_evaluation == {"d": 1}
    assert "variants" not in handed.extra
    assert list(handed.extra_section()) == ["a", "variants", "b", "dynamic_evaluation"]
    typed = _evaluation(extra={"a": 1}, shifted_metrics=["test_channel_accuracy"])
    assert typed.extra_section() == {"a": 1, "shifted_metrics": ["test_channel_accuracy"]}
    assert list(_evaluation(extra={"a": 1}).extra_section()) == ["a"]


def test_reported_reads_the_typed_sections_back():
    doc = {"dynamic_evaluation": {"model": {"name": "m", "test_bpc": 1.5}, "ngram": {"name": "n", "test_bpc": 2}}}
    r = Reported.from_json(doc)
    assert r.dynamic_evaluation.model.test_bpc == 1.5 and r.dynamic_evaluation.ngram.name == "n"
    assert r.variants == {} and r.shifted_metrics == []
    assert Reported.from_json({"dynamic_evaluation": {}}).dynamic_evaluation is None


@pytest.mark.parametrize("k", [2, 3])
def test_dna_and_audio_task_names_are_the_kit(k):
    from seqpipe.domains.audio.task import classification_metrics as audio_metrics
    from seqpipe.domains.dna.task import classification_metrics as dna_metrics

    rng = np.random.default_rng(k)
    y = rng.integers(0, k, 40)
    probs = rng.dirichlet(np.ones(k), 40)
    assert dna_metrics(y, probs) == classification_metrics(y, probs=probs)
    classes = [str(i) for i in range(k)]
    assert audio_metrics(y, probs.argmax(1), classes) == classification_metrics(
        y, probs.argmax(1), report=LABEL_METRICS, classes=classes
    )
