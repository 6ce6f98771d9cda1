"""TextVibCLIP model: 1-D CNN vibration encoder, adapter on frozen text embeddings, projections into one space.

Both modalities end in an L2-normalised D-vector. The projection heads are `Linear -> [Pre-LN residual
MLP stack] -> Linear(D, D)`; the last square layer of the vibration head is what Procrustes
initialisation sets. Class prototypes live in a buffer (updated by EMA, not by the optimiser), the
logit scale is learnable and clamped, and the bilinear head exists only when configured, so a plain
CLIP configuration has no unused parameters.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from monovec.textvib.config import ModelConfig, ResidualProjectionConfig, VibEncoderConfig


class ResidualBlock(nn.Module):
    """x + Dropout(W2 GELU(W1 LN(x))): Pre-LN keeps the identity path clean, so stacking is stable."""

    def __init__(self, dim: int, ffn_mult: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim * ffn_mult)
        self.fc2 = nn.Linear(dim * ffn_mult, dim)
        self.drop = nn.Dropout(dropout)
        nn.init.zeros_(self.fc2.weight)  # every block starts as the identity: depth cannot hurt at step 0
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.fc2(F.gelu(self.fc1(self.norm(x)))))


class Projection(nn.Module):
    """in -> D (-> residual stack) -> square output layer; `hidden()` is the input of that last layer.

    The linear layers have no bias: a bias is a direction shared by every input, and a shared
    direction is exactly what collapses a contrastive space before the class signal takes over.
    """

    def __init__(self, in_dim: int, dim: int, residual: ResidualProjectionConfig) -> None:
        super().__init__()
        self.inp = nn.Linear(in_dim, dim, bias=False)
        blocks = [ResidualBlock(dim, residual.ffn_mult, residual.dropout) for _ in range(residual.num_layers)]
        self.stack = nn.Sequential(*blocks) if residual.enabled else nn.Identity()
        self.out = nn.Linear(dim, dim, bias=False)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        return self.stack(self.inp(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(x))


class VibEncoder(nn.Module):
    """WDCNN-style 1-D CNN: a wide strided first kernel, small conv blocks with pooling, global average pool.

    The output is batch-normalised (no affine): after ReLU + pooling every window's features share
    one large positive mean, which would otherwise dominate the cosine geometry downstream.
    """

    def __init__(self, cfg: VibEncoderConfig, out_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for i, c in enumerate(cfg.channels):
            k, s = (cfg.first_kernel, cfg.first_stride) if i == 0 else (3, 1)
            layers += [
                nn.Conv1d(c_in, c, k, stride=s, padding=k // 2),
                nn.BatchNorm1d(c),
                nn.ReLU(),
                nn.MaxPool1d(2),
            ]
            c_in = c
        self.convs = nn.Sequential(*layers[:-1], nn.AdaptiveAvgPool1d(1), nn.Flatten())
        self.drop = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(c_in, out_dim)
        self.norm = nn.BatchNorm1d(out_dim, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.fc(self.drop(self.convs(x.unsqueeze(1)))))


class TextAdapter(nn.Module):
    """Residual bottleneck on frozen text embeddings; zero-initialised output so it starts as the identity."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.down = nn.Linear(dim, hidden)
        self.up = nn.Linear(hidden, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(F.gelu(self.down(self.norm(x))))


class TextVibModel(nn.Module):
    def __init__(self, cfg: ModelConfig, text_dim: int, n_classes: int) -> None:
        super().__init__()
        d = cfg.embed_dim
        self.cfg = cfg
        self.vib_encoder = VibEncoder(cfg.vib, d)
        self.vib_proj = Projection(d, d, cfg.residual_projection)
        self.text_adapter = TextAdapter(text_dim, cfg.text.adapter_hidden)
        self.text_proj = Projection(text_dim, d, cfg.residual_projection)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.similarity.init_temperature)))
        self.bilinear_w = nn.Parameter(torch.eye(d)) if cfg.similarity.bilinear_enabled else None
        self.register_buffer("prototypes", F.normalize(torch.randn(n_classes, d), dim=-1))
        self.register_buffer("text_center", torch.zeros(text_dim))

    def set_text_center(self, text_emb: torch.Tensor) -> None:
        """Centre on the training descriptions' mean (off by config: stays zero)."""
        if self.cfg.text.center:
            self.text_center.copy_(text_emb.mean(0))

    def encoders(self) -> list[nn.Module]:
        """What stage 1 of the first domain freezes."""
        return [self.vib_encoder, self.text_adapter]

    def vib_hidden(self, x: torch.Tensor) -> torch.Tensor:
        """Input of the vibration head's last (square) layer: what Procrustes aligns."""
        return self.vib_proj.hidden(self.vib_encoder(x))

    def encode_vib(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.vib_proj.out(self.vib_hidden(x)), dim=-1)

    def encode_text(self, e: torch.Tensor) -> torch.Tensor:
        # unit RMS per dimension (like the batch-normalised vibration side): on unit-norm 512-d rows
        # (~0.04 per dimension) Adam's first steps on the adapter would outweigh the input itself
        e = F.normalize(e - self.text_center, dim=-1) * math.sqrt(e.shape[-1])
        return F.normalize(self.text_proj(self.text_adapter(e)), dim=-1)

    def forward(
        self, x: torch.Tensor, text_emb: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(z_v, z_t, logit scale, scaled bilinear logits or None): every trained parameter is used here,
        because DDP only synchronises gradients of parameters that forward() touched."""
        z_v, z_t = self.encode_vib(x), self.encode_text(text_emb)
        scale = self.scale()
        bil = scale * self.bilinear(z_t, z_v) if self.bilinear_w is not None else None
        return z_v, z_t, scale, bil

    def scale(self) -> torch.Tensor:
        return self.logit_scale.clamp(max=math.log(self.cfg.similarity.max_logit_scale)).exp()

    def bilinear(self, z_t: torch.Tensor, z_v: torch.Tensor) -> torch.Tensor:
        """s[i, j] = t_i^T W v_j (text rows, vibration columns)."""
        if self.bilinear_w is None:
            raise RuntimeError("bilinear head is disabled in this model config")
        return z_t @ self.bilinear_w @ z_v.T
