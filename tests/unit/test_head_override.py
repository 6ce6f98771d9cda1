"""Head decision: a confident linear head may override a confident but disagreeing prototype
(`linear.overrides_prototype`, on for the shipped emotion head), and the label stays in `labels`."""

from __future__ import annotations

import numpy as np
import pytest

from monovec.classify.config import HeadConfig
from monovec.classify.head import Head
from monovec.classify.linear import LinearHead
from monovec.classify.prototypes import PrototypeSet

LABELS = ["anger", "sadness"]


def _head(overrides: bool, linear_margin: float, threshold: float) -> Head:
    config = HeadConfig.model_validate(
        {
            "labels": LABELS,
            "train": [{"path": "unused.jsonl", "text_fields": {"text": "en"}, "label_field": "label"}],
            "linear": {"overrides_prototype": overrides, "threshold": threshold},
        }
    )
    protos = PrototypeSet(
        LABELS, np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([0, 1]), None
    )  # x ~ e0 -> sadness prototype
    linear = LinearHead(
        LABELS, np.array([[linear_margin, 0.0], [0.0, 0.0]]), np.zeros(2)
    )  # large margin -> anger
    return Head("emotion", config, protos, linear)


@pytest.mark.parametrize(
    ("overrides", "margin", "label", "source"),
    [
        (False, 5.0, "sadness", "prototype"),  # default: a confident prototype decides
        (
            True,
            5.0,
            "anger",
            "linear_head",
        ),  # the linear head is sure (p 0.99 >= threshold 0.6) and disagrees
        (True, 0.1, "sadness", "prototype"),
    ],  # the linear head is unsure (p 0.52 < 0.6): the prototype keeps it
)
def test_confident_linear_head_overrides_a_disagreeing_prototype(
    overrides: bool, margin: float, label: str, source: str
) -> None:
    head = _head(overrides, margin, threshold=0.6)
    x = np.array([[1.0, 0.05]], np.float32) / np.linalg.norm([1.0, 0.05])
    (out,) = head.predict(x)
    assert out.status == "confident" and out.proto_label == "sadness"
    assert (out.label, out.source) == (label, source)
    assert out.label in out.labels
