"""Losses of the alignment redesign: multi-positive InfoNCE, prototype CE, bilinear auxiliary, RKD, LwF.

All take L2-normalised embeddings (or logits built from them) and return a scalar tensor. The contrastive
and relational ones live in `monovec.losses` (the encoder fine-tuning uses them too) and are re-exported here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from monovec.losses import cosine_matrix, multi_positive_infonce, positive_mask, rkd_loss, symmetric_infonce

__all__ = [
    "cosine_matrix",
    "lwf_loss",
    "multi_positive_infonce",
    "positive_mask",
    "prototype_ce",
    "rkd_loss",
    "symmetric_infonce",
]


def prototype_ce(z: torch.Tensor, prototypes: torch.Tensor, labels: torch.Tensor, tau: float) -> torch.Tensor:
    """Cross-entropy of cosine-to-prototype logits: pulls each embedding to its class anchor."""
    return F.cross_entropy(z @ F.normalize(prototypes, dim=-1).T / tau, labels)


def lwf_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Learning without Forgetting: KL(teacher || student) on softened class logits, scaled by T^2."""
    t = temperature
    return (
        F.kl_div(
            F.log_softmax(student_logits / t, dim=1),
            F.softmax(teacher_logits.detach() / t, dim=1),
            reduction="batchmean",
        )
        * t
        * t
    )
