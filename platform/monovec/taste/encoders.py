"""The four Taste2Vec encoders (seed: text, sensory vocabulary, numeric, context) and the numeric scaler.

- text: the platform encoder (USE multilingual v3 by default) is frozen, so each lot's notes text is
  embedded once (cached) and only a linear projection learns;
- sensory: a masked mean over rows of the dynamic embedding table (terms in Korean or English, metadata
  tokens); the table grows online and is trainable or frozen by config;
- numeric: scaled cupping scores + brewing variables through an MLP with LayerNorm (the seed's BatchNorm
  misbehaves on the small, shifting batches of online learning);
- context: hour, weekday, weather, temperature, mood, energy -> 12 features; a GRU over the user's recent
  contexts (or an MLP over the current one).

The scaler is fitted once on the catalogue, saved with the model and only ever `transform`s afterwards:
refitting per record (the seed's `scaler.transform` on an unfitted scaler) would make a score's meaning
depend on the batch it arrived in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from monovec.embed.dynamic import DynamicEmbedding
from monovec.taste.data import SCORE_FIELDS

BREW_FIELDS: tuple[str, ...] = ("temp_c", "ratio", "time_s", "grind_um")
# Brewing variables have no data to fit on before the stream starts: a documented pour-over reference
# (SCA-style brew: 92 C, 1:16, 3.5 min, medium grind) with typical spreads.
BREW_REFERENCE: dict[str, tuple[float, float]] = {
    "temp_c": (92.0, 3.0),
    "ratio": (16.0, 2.0),
    "time_s": (210.0, 60.0),
    "grind_um": (600.0, 200.0),
}
NUMERIC_DIM = len(SCORE_FIELDS) + len(BREW_FIELDS)

WEATHERS = ("sunny", "cloudy", "rainy", "snowy")
CONTEXT_DIM = 12


class NumericScaler:
    """Standardises cupping scores (fitted on the catalogue) and brewing variables (reference values)."""

    def __init__(self, mean: Mapping[str, float], std: Mapping[str, float]) -> None:
        self.mean, self.std = dict(mean), dict(std)

    @classmethod
    def fit(cls, scores: np.ndarray) -> NumericScaler:
        mean = {f: float(np.nanmean(scores[:, j])) for j, f in enumerate(SCORE_FIELDS)}
        std = {f: max(float(np.nanstd(scores[:, j])), 1e-3) for j, f in enumerate(SCORE_FIELDS)}
        for f, (m, s) in BREW_REFERENCE.items():
            mean[f], std[f] = m, s
        return cls(mean, std)

    def items(self, scores: np.ndarray) -> np.ndarray:
        """(N, len(SCORE_FIELDS)) raw -> z-scores clipped to [-5, 5]; missing -> 0 (the mean)."""
        mean = np.array([self.mean[f] for f in SCORE_FIELDS], dtype=np.float32)
        std = np.array([self.std[f] for f in SCORE_FIELDS], dtype=np.float32)
        return np.nan_to_num(np.clip((scores - mean) / std, -5, 5), nan=0.0).astype(np.float32)

    def brew(self, brew: Mapping[str, float] | None) -> list[float]:
        """One event's brewing variables -> z-scores; absent ones are 0 (the reference)."""
        brew = brew or {}
        return [
            float(np.clip((brew[f] - self.mean[f]) / self.std[f], -5, 5)) if brew.get(f) is not None else 0.0
            for f in BREW_FIELDS
        ]

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std}

    def save(self, path: str | Path) -> Path:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> NumericScaler:
        blob = json.loads(Path(path).read_text())
        return cls(blob["mean"], blob["std"])


def context_features(ctx: Mapping[str, Any] | None) -> list[float]:
    """12 numbers for one tasting moment; absent fields are neutral (zeros / mid-scale)."""
    ctx = ctx or {}
    out: list[float] = []
    hour, day = ctx.get("hour"), ctx.get("weekday")
    out += (
        [math.sin(2 * math.pi * hour / 24), math.cos(2 * math.pi * hour / 24)]
        if hour is not None
        else [0.0, 0.0]
    )
    out += (
        [math.sin(2 * math.pi * day / 7), math.cos(2 * math.pi * day / 7)] if day is not None else [0.0, 0.0]
    )
    out.append(1.0 if day is not None and day >= 5 else 0.0)
    weather = ctx.get("weather")
    out += [1.0 if weather == w else 0.0 for w in WEATHERS]
    out.append((ctx["temp_c"] - 15.0) / 10.0 if ctx.get("temp_c") is not None else 0.0)
    out.append((ctx["mood"] - 5.5) / 4.5 if ctx.get("mood") is not None else 0.0)
    out.append((ctx["energy"] - 5.5) / 4.5 if ctx.get("energy") is not None else 0.0)
    return out


class SensoryEncoder(nn.Module):
    """Masked mean of the table rows of a record's terms: (B, L) ids + mask -> (B, dim)."""

    def __init__(self, table: DynamicEmbedding) -> None:
        super().__init__()
        self.table = table

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        rows = self.table(ids) * mask.unsqueeze(-1)
        return rows.sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)


class NumericEncoder(nn.Module):
    def __init__(self, hidden: int, in_dim: int = NUMERIC_DIM) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.LayerNorm(hidden)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ContextEncoder(nn.Module):
    """(B, L, 12) contexts, oldest first, the current one last (zero rows = no history) -> (B, hidden)."""

    def __init__(self, hidden: int, kind: str = "gru") -> None:
        super().__init__()
        self.kind = kind
        if kind == "gru":
            self.rnn = nn.GRU(CONTEXT_DIM, hidden, batch_first=True)
        else:
            self.mlp = nn.Sequential(
                nn.Linear(CONTEXT_DIM, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh()
            )

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        if self.kind == "gru":
            _, h = self.rnn(seq)
            return h[-1]
        return self.mlp(seq[:, -1])
