"""Losses: multi-positive InfoNCE (with its edge cases), prototype CE, RKD, LwF."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from monovec.losses import multi_positive_infonce, rkd_loss, symmetric_infonce
from monovec.textvib.losses import lwf_loss, prototype_ce


def test_multi_positive_matches_hand_computation() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.5, 0.5, 3.0]])
    la, lb = torch.tensor([0, 1]), torch.tensor([0, 0, 1])
    lse0 = math.log(math.exp(2) + math.exp(1) + 1)
    lse1 = math.log(2 * math.exp(0.5) + math.exp(3))
    row0 = -((2 - lse0) + (1 - lse0)) / 2  # two positives, averaged
    row1 = -(3 - lse1)
    assert multi_positive_infonce(logits, la, lb).item() == pytest.approx((row0 + row1) / 2, rel=1e-6)


def test_rows_without_positives_are_left_out() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.3, -1.0, 4.0]])
    base = multi_positive_infonce(logits[:1], torch.tensor([0]), torch.tensor([0, 0, 1]))
    with_orphan = multi_positive_infonce(logits, torch.tensor([0, 7]), torch.tensor([0, 0, 1]))
    assert with_orphan.item() == pytest.approx(base.item())


def test_no_positive_anywhere_falls_back_to_the_diagonal() -> None:
    logits = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))
    got = multi_positive_infonce(logits, torch.tensor([0, 1, 2, 3]), torch.tensor([4, 5, 6, 7]))
    assert got.item() == pytest.approx(F.cross_entropy(logits, torch.arange(4)).item(), rel=1e-6)
    rect = multi_positive_infonce(torch.randn(2, 3), torch.tensor([0, 1]), torch.tensor([2, 2, 2]))
    assert rect.item() == 0.0


def test_unique_labels_and_no_labels_equal_plain_clip() -> None:
    logits = torch.randn(5, 5, generator=torch.Generator().manual_seed(1))
    clip = F.cross_entropy(logits, torch.arange(5))
    assert multi_positive_infonce(logits).item() == pytest.approx(clip.item(), rel=1e-6)
    assert multi_positive_infonce(logits, torch.arange(5), torch.arange(5)).item() == pytest.approx(
        clip.item(), rel=1e-6
    )
    sym = 0.5 * (clip + F.cross_entropy(logits.T, torch.arange(5)))
    assert symmetric_infonce(logits).item() == pytest.approx(sym.item(), rel=1e-6)
    with pytest.raises(ValueError, match="square"):
        multi_positive_infonce(torch.randn(2, 3))


def test_only_the_diagonal_loss_punishes_same_class_items_for_being_together() -> None:
    y = torch.tensor([0, 0, 1, 1])
    together = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    apart = F.normalize(torch.tensor([[1.0, -0.3], [1.0, 0.3], [-0.3, 1.0], [0.3, 1.0]]), dim=-1)

    def loss(z: torch.Tensor, labels: torch.Tensor | None) -> float:
        return symmetric_infonce(10 * z @ z.T, labels, labels).item()

    assert loss(together, y) < loss(apart, y)  # multi-positive: same class collapsing is the goal
    assert loss(together, None) > loss(apart, None)  # diagonal CLIP: same-class items are negatives


def test_prototype_ce_rkd_lwf() -> None:
    z = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    protos = torch.tensor([[2.0, 0.0], [0.0, 3.0]])  # normalised inside
    expected = F.cross_entropy(z @ torch.eye(2) / 0.5, torch.tensor([0, 1]))
    assert prototype_ce(z, protos, torch.tensor([0, 1]), 0.5).item() == pytest.approx(expected.item())
    g = torch.Generator().manual_seed(2)
    a = F.normalize(torch.randn(6, 8, generator=g), dim=-1)
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g))
    assert rkd_loss(a @ q, a).item() == pytest.approx(
        0.0, abs=1e-10
    )  # a rotation keeps every pairwise cosine
    assert rkd_loss(F.normalize(torch.randn(6, 8, generator=g), dim=-1), a).item() > 0.01
    assert rkd_loss(a[:1], a[:1]).item() == 0.0
    logits = torch.randn(3, 4, generator=g)
    assert lwf_loss(logits, logits, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    assert lwf_loss(logits, torch.randn(3, 4, generator=g), 2.0).item() > 0
