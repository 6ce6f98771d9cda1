"""Orthogonal Procrustes: the rotation that best maps vibration class centres onto text class centres.

Solved once at the start of the first domain: with M_v, M_t the (centred) class-mean matrices,
R = U V^T from SVD(M_v^T M_t) minimises ||M_v R - M_t||_F over orthogonal R. Setting the vibration
head's last layer to y = h R (+ the mean offset) starts training with both modalities' class centres
already on top of each other, instead of at a random rotation.
"""

from __future__ import annotations

import torch
from torch import nn


def orthogonal_procrustes(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Orthogonal R (D x D) minimising ||source @ R - target||_F (rows are paired points)."""
    if source.shape != target.shape:
        raise ValueError(
            f"source {tuple(source.shape)} and target {tuple(target.shape)} must have the same shape"
        )
    u, _, vh = torch.linalg.svd(source.double().T @ target.double())
    return (u @ vh).to(source.dtype)


@torch.no_grad()
def procrustes_init(layer: nn.Linear, source_means: torch.Tensor, target_means: torch.Tensor) -> torch.Tensor:
    """Set a square Linear so that layer(mu_v_k) ~ mu_t_k up to rotation: W = R^T, b = mean_t - mean_v R."""
    if layer.in_features != layer.out_features or layer.in_features != source_means.shape[1]:
        raise ValueError("Procrustes init needs a square layer matching the mean dimension")
    mu_s, mu_t = source_means.mean(0), target_means.mean(0)
    scale = (target_means - mu_t).norm() / (source_means - mu_s).norm().clamp(min=1e-8)
    r = orthogonal_procrustes(source_means - mu_s, target_means - mu_t)
    layer.weight.copy_((scale * r).T)
    if layer.bias is not None:
        layer.bias.copy_(mu_t - scale * mu_s @ r)
    return r
