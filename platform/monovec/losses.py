"""Contrastive and distillation losses shared by the model families (TextVibCLIP, the encoder fine-tuning).

All take L2-normalised embeddings (or logits built from them) and return a scalar tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def positive_mask(
    labels_a: torch.Tensor | None, labels_b: torch.Tensor | None, shape: tuple[int, int]
) -> torch.Tensor:
    """mask[i, j] = same class; without labels only the diagonal (plain CLIP pairing)."""
    if labels_a is None or labels_b is None:
        if shape[0] != shape[1]:
            raise ValueError(f"diagonal pairing needs a square logit matrix, got {shape}")
        return torch.eye(shape[0], dtype=torch.bool)
    return labels_a[:, None] == labels_b[None, :]


def multi_positive_infonce(
    logits: torch.Tensor, labels_a: torch.Tensor | None = None, labels_b: torch.Tensor | None = None
) -> torch.Tensor:
    """Rows of `logits` (queries a) against columns (keys b): -mean log-softmax over each row's positives.

    Rows without any positive are left out of the mean (they carry no alignment signal and would only
    push everything apart). If no row has a positive, the diagonal is used as in plain CLIP (when the
    matrix is square) or the loss is zero.
    """
    mask = positive_mask(labels_a, labels_b, tuple(logits.shape)).to(logits.device)
    has_pos = mask.any(dim=1)
    if not bool(has_pos.any()):
        if logits.shape[0] != logits.shape[1]:
            return logits.sum() * 0.0
        mask = torch.eye(logits.shape[0], dtype=torch.bool, device=logits.device)
        has_pos = mask.any(dim=1)
    logp = F.log_softmax(logits, dim=1)
    per_row = -(logp * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
    return per_row[has_pos].mean()


def symmetric_infonce(
    logits: torch.Tensor, labels_a: torch.Tensor | None = None, labels_b: torch.Tensor | None = None
) -> torch.Tensor:
    """Average of both directions (a -> b over rows, b -> a over columns)."""
    return 0.5 * (
        multi_positive_infonce(logits, labels_a, labels_b)
        + multi_positive_infonce(logits.T, labels_b, labels_a)
    )


def cosine_matrix(z: torch.Tensor) -> torch.Tensor:
    z = F.normalize(z, dim=-1)
    return z @ z.T


def rkd_loss(z_now: torch.Tensor, z_ref: torch.Tensor) -> torch.Tensor:
    """MSE between the off-diagonal pairwise cosines of current and stored (reference) embeddings."""
    n = z_now.shape[0]
    if n < 2:
        return z_now.sum() * 0.0
    off = ~torch.eye(n, dtype=torch.bool, device=z_now.device)
    return F.mse_loss(cosine_matrix(z_now)[off], cosine_matrix(z_ref.detach())[off])
