"""Class prototypes: K x D anchors both modalities are pulled to, kept L2-normalised, moved by EMA.

The update uses the batch's per-class mean of text and vibration embeddings, so the anchors follow
the shared space as it forms instead of being a second set of parameters for the optimiser to chase.
Under DDP the per-class sums and counts are all-reduced first, so every worker holds the same table.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def class_sums(z: torch.Tensor, labels: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class sum of rows of z and the per-class count."""
    sums = torch.zeros(n_classes, z.shape[1], dtype=z.dtype, device=z.device).index_add_(0, labels, z)
    counts = torch.bincount(labels, minlength=n_classes).to(z.dtype)
    return sums, counts


def _all_reduce(*tensors: torch.Tensor) -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        for t in tensors:
            dist.all_reduce(t)


@torch.no_grad()
def ema_update(
    prototypes: torch.Tensor, z: torch.Tensor, labels: torch.Tensor, momentum: float
) -> torch.Tensor:
    """In place: c_k <- normalise(m c_k + (1 - m) mean_k(z)) for every class present in the batch."""
    sums, counts = class_sums(F.normalize(z.detach(), dim=-1), labels, prototypes.shape[0])
    _all_reduce(sums, counts)
    present = counts > 0
    means = F.normalize(sums[present] / counts[present, None], dim=-1)
    prototypes[present] = F.normalize(momentum * prototypes[present] + (1 - momentum) * means, dim=-1)
    return prototypes


@torch.no_grad()
def class_means(z: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """L2-normalised per-class means (rows of absent classes are zero)."""
    sums, counts = class_sums(F.normalize(z, dim=-1), labels, n_classes)
    return F.normalize(sums / counts.clamp(min=1)[:, None], dim=-1)
