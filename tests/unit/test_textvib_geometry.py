"""Procrustes initialisation, prototype EMA and the replay buffer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from monovec.textvib.procrustes import orthogonal_procrustes, procrustes_init
from monovec.textvib.prototypes import class_means, ema_update
from monovec.textvib.replay import ReplayBuffer


def test_procrustes_recovers_the_rotation_and_is_orthogonal() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(9, 16, generator=g)
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=g))
    r = orthogonal_procrustes(a, a @ q)
    torch.testing.assert_close(r @ r.T, torch.eye(16), atol=1e-5, rtol=0)
    torch.testing.assert_close(a @ r, a @ q, atol=1e-4, rtol=0)
    noisy = orthogonal_procrustes(a, a @ q + 0.01 * torch.randn(9, 16, generator=g))
    torch.testing.assert_close(noisy @ noisy.T, torch.eye(16), atol=1e-5, rtol=0)


def test_procrustes_init_maps_source_centres_onto_target_centres() -> None:
    g = torch.Generator().manual_seed(1)
    src = torch.randn(9, 8, generator=g) * 3 + 5  # offset + scale differ from the target
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g))
    tgt = F.normalize(torch.randn(9, 8, generator=g), dim=-1)
    tgt = (src - src.mean(0)) @ q
    tgt = tgt / tgt.norm() * 2 + torch.ones(8)
    layer = nn.Linear(8, 8)
    procrustes_init(layer, src, tgt)
    with torch.no_grad():
        torch.testing.assert_close(layer(src), tgt, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="square"):
        procrustes_init(nn.Linear(8, 4), src, tgt[:, :4])


def test_prototype_ema_update_by_hand() -> None:
    protos = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), dim=-1)
    before = protos.clone()
    z = torch.tensor([[0.0, 2.0], [0.0, 1.0], [3.0, 0.0]])
    labels = torch.tensor([0, 0, 1])
    ema_update(protos, z, labels, momentum=0.9)
    exp0 = F.normalize(
        0.9 * before[0] + 0.1 * torch.tensor([0.0, 1.0]), dim=0
    )  # mean of normalised rows of class 0
    exp1 = F.normalize(0.9 * before[1] + 0.1 * torch.tensor([1.0, 0.0]), dim=0)
    torch.testing.assert_close(protos[0], exp0)
    torch.testing.assert_close(protos[1], exp1)
    torch.testing.assert_close(protos[2], before[2])  # absent class untouched
    torch.testing.assert_close(protos.norm(dim=1), torch.ones(3))
    means = class_means(z, labels, 3)
    torch.testing.assert_close(means[0], torch.tensor([0.0, 1.0]))
    assert means[2].abs().sum() == 0


@pytest.mark.parametrize("strategy", ["reservoir", "class_balanced"])
def test_replay_buffer_capacity_balance_determinism(strategy: str) -> None:
    labels = np.repeat(np.arange(3), [200, 50, 20])
    buf = ReplayBuffer(30, strategy, 3, seed=0)
    buf.add_domain(0, labels)
    buf.add_domain(1, labels)
    assert len(buf) == 30
    counts = np.bincount(buf.items[:, 2], minlength=3)
    if strategy == "class_balanced":
        assert counts.tolist() == [10, 10, 10]
    assert set(buf.items[:, 0]) == {0, 1}  # both domains are remembered
    assert all(labels[i] == y for _, i, y in buf.items)
    again = ReplayBuffer(30, strategy, 3, seed=0)
    again.add_domain(0, labels)
    again.add_domain(1, labels)
    np.testing.assert_array_equal(buf.items, again.items)
    restored = ReplayBuffer(30, strategy, 3, seed=0)
    restored.load_state_dict(buf.state_dict())
    np.testing.assert_array_equal(restored.items, buf.items)
    idx = buf.sample(8, np.random.default_rng(0))
    assert len(set(idx.tolist())) == 8
