"""Taste2Vec: a tasting record -> one L2-normalised 128-d vector; a user in a context -> a point in the same space.

Item tower (the seed's `encode(taste_record)`): [text projection | sensory bag | numeric MLP] -> fusion MLP,
-> L2-normalise. Query tower: user row (a dynamic table, so new users get rows online, initialised at the
mean user) + a projection of the context encoder + the pooled vectors of the user's recent verdicts ->
L2-normalise. Two scores share the cosine: "will the user like it" = s * cos + b_user + b_like(lot) + b
(trained with the logistic loss; AUC) and "which lot will the user pick and like" = s' * cos + b_pick(lot)
(trained with the catalogue softmax; hit-rate, recommendations). The biases are columns of the user and
item tables (dynamic tables too: new lots get rows online).

Why context sits on the query side (the seed fused it into the item vector): the context describes the
tasting moment, i.e. the user's state, and keeping it out of the item vector lets every lot be embedded
once and stored in Chroma, so a recommendation is one nearest-neighbour query.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from monovec.embed.dynamic import OOV_ID, DynamicEmbedding, TokenEncoder
from monovec.taste.config import ModelConfig
from monovec.taste.encoders import ContextEncoder, NumericEncoder, SensoryEncoder
from monovec.taste.records import ItemFeatures, Records, lookup_padded


class Taste2Vec(nn.Module):
    def __init__(self, config: ModelConfig, text_dim: int, token_encoder: TokenEncoder | None = None) -> None:
        super().__init__()
        self.config = cfg = config
        self.text_dim = text_dim
        sensory_cfg = cfg.sensory
        if sensory_cfg.init == "encoder" and token_encoder is None:
            sensory_cfg = sensory_cfg.model_copy(update={"init": "random"})  # no text encoder: seeded rows
        self.sensory = SensoryEncoder(DynamicEmbedding(sensory_cfg, encoder=token_encoder))
        self.users = DynamicEmbedding(cfg.users)
        self.items = DynamicEmbedding(cfg.items) if cfg.items is not None else None
        self.text_proj = nn.Linear(text_dim, cfg.text.proj_dim) if text_dim else None
        self.numeric = NumericEncoder(cfg.numeric_hidden)
        fused = (cfg.text.proj_dim if text_dim else 0) + sensory_cfg.dim + cfg.numeric_hidden
        self.fusion = nn.Sequential(
            nn.Linear(fused, cfg.fusion_hidden), nn.GELU(), nn.Linear(cfg.fusion_hidden, cfg.dim)
        )
        self.context = ContextEncoder(cfg.context.hidden, cfg.context.kind)
        self.ctx_proj = nn.Linear(cfg.context.hidden, cfg.dim)
        # the user's recent verdicts (profiles.py): mean vector of liked / of disliked lots, and like-rate log-odds
        self.liked_proj = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.disliked_proj = nn.Linear(cfg.dim, cfg.dim, bias=False)
        with torch.no_grad():
            self.liked_proj.weight.copy_(torch.eye(cfg.dim))
            self.disliked_proj.weight.copy_(-0.5 * torch.eye(cfg.dim))
        self.prior_weight = nn.Parameter(torch.tensor(1.0))
        self.ridge_weight = nn.Parameter(torch.tensor(1.0))
        self.item_prior_weight = nn.Parameter(torch.tensor(1.0))  # x lot like-rate log-odds (like score)
        self.item_pop_weight = nn.Parameter(torch.tensor(1.0))  # x log(1 + likes of the lot) (pick score)
        self.log_scale = nn.Parameter(torch.tensor(float(cfg.init_scale)).log())  # like score
        self.log_pick_scale = nn.Parameter(torch.tensor(float(cfg.init_scale)).log())  # pick score
        self.bias = nn.Parameter(torch.zeros(()))

    @property
    def table(self) -> DynamicEmbedding:
        """The sensory-vocabulary table."""
        return self.sensory.table

    # ---- vocabulary ---------------------------------------------------------------------------------
    def observe(self, records: Records) -> None:
        """Count the records' users and terms: new ones get rows now (call before any forward of a step)."""
        self.users.lookup(records.users, add_missing=True)
        terms = [t for extra in records.extra for t in extra]
        if terms:
            self.table.lookup(terms, add_missing=True)

    @torch.no_grad()
    def refresh_user_prior(self) -> None:
        """Row 0 (unknown users) := mean of the known users: a cold-start user is the average taste."""
        n = self.users.num_rows
        if n > 1:
            self.users.weight.data[OOV_ID] = self.users.weight.data[1:n].mean(0)

    # ---- towers -------------------------------------------------------------------------------------
    def _items(
        self,
        text: torch.Tensor,
        ids: torch.Tensor,
        mask: torch.Tensor,
        numeric: torch.Tensor,
        rows: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, dim) unit vectors and (B, 2) item biases: [like bias, pick bias] (zeros without an item table)."""
        parts = [self.sensory(ids, mask), self.numeric(numeric)]
        if self.text_proj is not None:
            parts.insert(0, self.text_proj(text))
        vec = self.fusion(torch.cat(parts, dim=-1))
        biases = vec.new_zeros((vec.shape[0], 2))
        if self.items is not None and rows is not None:
            own = self.items(rows)
            biases = biases + F.pad(own, (0, 2 - own.shape[1]))  # dim 1: like bias only
        return F.normalize(vec, dim=-1), biases

    def encode_catalogue(self, features: ItemFeatures) -> tuple[torch.Tensor, torch.Tensor]:
        """Vectors (N, dim) and biases (N, 2) of the lots as catalogued (no taster's terms, reference brew)."""
        ids, mask = features.token_ids(self.table)
        numeric = torch.cat([features.numeric, features.numeric.new_zeros((len(features), 4))], dim=1)
        rows = features.item_rows(self.items) if self.items is not None else None
        return self._items(features.text, ids, mask, numeric, rows)

    def encode_records(self, features: ItemFeatures, records: Records) -> tuple[torch.Tensor, torch.Tensor]:
        """Vectors (B, dim) and biases (B, 2) of tasting records: the lot plus the taster's terms and brew."""
        items = torch.from_numpy(records.items)
        tokens = [
            features.tokens[i] + extra for i, extra in zip(records.items.tolist(), records.extra, strict=True)
        ]
        ids, mask = lookup_padded(self.table, tokens)
        numeric = torch.cat([features.numeric[items], torch.from_numpy(records.brew)], dim=1)
        rows = features.item_rows(self.items)[items] if self.items is not None else None
        return self._items(features.text[items], ids, mask, numeric, rows)

    def query(self, records: Records, catalogue: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, dim) query vectors and (B,) user biases for the records' users at their moments.

        query = normalise(user row + context + liked_proj(mean liked) + disliked_proj(mean disliked)
        + g * ridge), where the means pool the current `catalogue` vectors of the user's recent verdicts and
        `ridge` is the ridge regression of those verdicts (+1 / -1) on those vectors - a per-user linear
        taste fitted at query time, in closed form (the fast weights of online learning); unknown users
        use row 0 (the population prior). bias = user bias + w * log-odds of the user's like rate."""
        dim = self.config.dim
        rows = self.users(self.users.lookup(records.users, add_missing=False))
        vec = rows[:, :dim] + self.ctx_proj(self.context(torch.from_numpy(records.ctx)))
        sign = torch.from_numpy(records.hist_sign)
        if sign.numel() and bool(sign.ne(0).any()):
            hist = catalogue[torch.from_numpy(records.hist)]  # (B, P, dim)
            for weight, proj in (
                (sign.gt(0).float(), self.liked_proj),
                (sign.lt(0).float(), self.disliked_proj),
            ):
                pooled = (hist * weight.unsqueeze(-1)).sum(1) / weight.sum(1, keepdim=True).clamp(min=1.0)
                vec = vec + proj(pooled)
            if self.config.ridge_lambda > 0:
                vec = vec + self.ridge_weight * _ridge(hist, sign, self.config.ridge_lambda)
        bias = rows[:, dim] + self.prior_weight * torch.from_numpy(records.prior)
        return F.normalize(vec, dim=-1), bias

    def logits(
        self, q: torch.Tensor, user_bias: torch.Tensor, items: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        """Will the user like this record? Paired (B, dim) x (B,) -> (B,) = s * cos + b_user + b_like(item) + b."""
        vec, item_bias = items
        return self.log_scale.exp() * (q * vec).sum(-1) + user_bias + item_bias[:, 0] + self.bias

    def like_logits(
        self, q: torch.Tensor, user_bias: torch.Tensor, features: ItemFeatures, records: Records
    ) -> torch.Tensor:
        """`logits` of the records' own lots, plus the lots' like-rate memory."""
        stats = torch.from_numpy(records.item_stats)
        return (
            self.logits(q, user_bias, self.encode_records(features, records))
            + self.item_prior_weight * stats[:, 0]
        )

    def catalogue_logits(
        self, q: torch.Tensor, catalogue: tuple[torch.Tensor, torch.Tensor], stats: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Which lot will the user pick and like? (B, N) = s' * cos + b_pick(item): the ranking behind
        recommendations (softmax-trained; b_pick soaks up how often a lot gets tried, so the cosine is free
        to model taste), + w * log(1 + likes) of the lot when `stats` (N, 2) is given. The user's bias is the
        same for every lot and left out."""
        vec, item_bias = catalogue
        out = self.log_pick_scale.exp() * q @ vec.T + item_bias[None, :, 1]
        return out if stats is None else out + self.item_pop_weight * stats[None, :, 1]

    def record_logits(self, features: ItemFeatures, records: Records) -> torch.Tensor:
        q, b = self.query(records, self.encode_catalogue(features)[0])
        return self.like_logits(q, b, features, records)

    # ---- persistence --------------------------------------------------------------------------------
    def save(self, directory: str | Path, extra: dict[str, Any] | None = None) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), directory / "model.pt")
        meta = {"config": self.config.model_dump(mode="json"), "text_dim": self.text_dim, **(extra or {})}
        (directory / "model.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False))
        return directory

    @classmethod
    def load(cls, directory: str | Path, token_encoder: TokenEncoder | None = None) -> Taste2Vec:
        directory = Path(directory)
        meta = json.loads((directory / "model.json").read_text())
        model = cls(ModelConfig.model_validate(meta["config"]), int(meta["text_dim"]), token_encoder)
        model.load_state_dict(torch.load(directory / "model.pt", map_location="cpu", weights_only=True))
        return model


def _ridge(hist: torch.Tensor, sign: torch.Tensor, lam: float) -> torch.Tensor:
    """Per row: argmin_w ||H w - y||^2 + lam ||w||^2 = H^T (H H^T + lam I)^-1 y, with H (P, dim) the vectors
    of the user's recent lots (padding rows zero, y = 0 there). (B, P, dim), (B, P) -> (B, dim)."""
    mask = sign.ne(0).to(hist.dtype).unsqueeze(-1)
    h = hist * mask
    gram = h @ h.transpose(1, 2) + lam * torch.eye(h.shape[1], dtype=h.dtype)
    alpha = torch.linalg.solve(gram, sign.unsqueeze(-1))
    return (h.transpose(1, 2) @ alpha).squeeze(-1)
