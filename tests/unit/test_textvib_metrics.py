"""Continual metrics against hand-computed values (Avalanche definitions), retrieval, cosine structure."""

from __future__ import annotations

import numpy as np
import pytest

from monovec.textvib.metrics import continual_summary, cosine_stats, retrieval_topk

R = [[0.90, 0.50, 0.40], [0.92, 0.95, 0.60], [0.70, 0.90, 0.97]]


def test_average_accuracy_forgetting_bwt_by_hand() -> None:
    s = continual_summary(R)
    assert s["average_accuracy"] == pytest.approx((0.70 + 0.90 + 0.97) / 3)
    # Avalanche: accuracy right after learning a domain minus the final accuracy on it
    assert s["forgetting_per_domain"] == pytest.approx([0.90 - 0.70, 0.95 - 0.90])
    assert s["forgetting"] == pytest.approx(0.125)
    assert s["bwt"] == pytest.approx(-0.125)
    # Chaudhry's max-forgetting uses the best earlier accuracy (0.92 after domain 2)
    assert s["max_forgetting"] == pytest.approx(((0.92 - 0.70) + (0.95 - 0.90)) / 2)
    assert s["average_accuracy_seen"] == pytest.approx([0.90, (0.92 + 0.95) / 2, (0.70 + 0.90 + 0.97) / 3])
    one = continual_summary([[0.8]])
    assert one["average_accuracy"] == 0.8 and one["forgetting"] == 0.0
    with pytest.raises(ValueError, match="square"):
        continual_summary([[0.1, 0.2]])


def test_retrieval_topk_by_hand() -> None:
    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    keys = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.7, 0.3]])
    k_labels = np.array([0, 0, 1, 2])
    got = retrieval_topk(q, np.array([2, 1]), keys, k_labels, ks=(1, 3))
    # query 0 (class 2): ranking 0,1,3 -> class 2 at rank 3; query 1 (class 1): key 2 first
    assert got[1] == pytest.approx(0.5)
    assert got[3] == pytest.approx(1.0)


def test_cosine_stats_by_hand() -> None:
    z = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    s = cosine_stats(z, np.array([0, 0, 1]))
    assert s["within_class_cos"] == pytest.approx(1.0)
    assert s["between_class_cos"] == pytest.approx(0.0)
