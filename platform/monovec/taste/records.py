"""Columnar batches of tasting records, independent of any model (so the online and the frozen model, the
replay buffer and a checkpoint all hold the same thing), and the catalogue's per-item tensors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from monovec.embed.dynamic import DynamicEmbedding


@dataclass
class Records:
    """B tasting records: who, which lot, the moment, extra terms, brew, what the user did before, feedback."""

    event_ids: list[str]
    users: list[str]
    items: np.ndarray  # (B,) catalogue rows
    extra: list[list[str]]  # terms the taster wrote (may be new vocabulary)
    brew: np.ndarray  # (B, 4) scaled brewing variables
    ctx: np.ndarray  # (B, L, 12) context features, oldest first, current last
    label: np.ndarray  # (B,) 1 = liked, 0 = disliked
    weight: np.ndarray  # (B,) loss weight (stronger ratings weigh more)
    hist: np.ndarray  # (B, P) catalogue rows of the user's latest verdicts before this event
    hist_sign: np.ndarray  # (B, P) +1 liked, -1 disliked, 0 padding
    prior: np.ndarray  # (B,) log-odds of the user's smoothed like rate before this event
    item_stats: np.ndarray  # (B, 2) the lot's [like-rate log-odds, log(1 + likes)] before this window

    def __len__(self) -> int:
        return len(self.event_ids)

    def take(self, idx: Sequence[int] | np.ndarray) -> Records:
        idx = np.asarray(idx, dtype=np.int64)
        return Records(
            **{
                f.name: (
                    getattr(self, f.name)[idx]
                    if f.name in _ARRAYS
                    else [getattr(self, f.name)[i] for i in idx]
                )
                for f in fields(self)
            }
        )

    @staticmethod
    def concat(parts: Sequence[Records]) -> Records:
        parts = [p for p in parts if len(p)]
        if len(parts) == 1:
            return parts[0]
        return Records(
            **{
                f.name: (
                    np.concatenate([getattr(p, f.name) for p in parts])
                    if f.name in _ARRAYS
                    else [x for p in parts for x in getattr(p, f.name)]
                )
                for f in fields(Records)
            }
        )

    def columns(self) -> dict[str, object]:
        """Plain lists and tensors only: loadable with torch.load(weights_only=True)."""
        return {
            f.name: (
                torch.from_numpy(np.ascontiguousarray(getattr(self, f.name)))
                if f.name in _ARRAYS
                else [list(x) if isinstance(x, list) else x for x in getattr(self, f.name)]
            )
            for f in fields(self)
        }

    @staticmethod
    def from_columns(c: dict[str, object]) -> Records:
        return Records(
            **{
                f.name: (
                    c[f.name].numpy()
                    if f.name in _ARRAYS
                    else [list(x) if isinstance(x, list) else x for x in c[f.name]]
                )  # type: ignore[attr-defined, union-attr]
                for f in fields(Records)
            }
        )


_ARRAYS = {"items", "brew", "ctx", "label", "weight", "hist", "hist_sign", "prior", "item_stats"}


class ItemFeatures:
    """Per-lot tensors: frozen text vectors, scaled scores and the lot's tokens (ids cached per vocabulary)."""

    def __init__(
        self, ids: list[str], text: np.ndarray, numeric: np.ndarray, tokens: list[list[str]]
    ) -> None:
        self.ids = ids
        self.text = torch.from_numpy(np.ascontiguousarray(text, dtype=np.float32))
        self.numeric = torch.from_numpy(np.ascontiguousarray(numeric, dtype=np.float32))
        self.tokens = tokens
        self._cache: dict[int, tuple[int, torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self.tokens)

    def item_rows(self, table: DynamicEmbedding) -> torch.Tensor:
        """(N,) ids of the lots in the item table (cached per vocabulary)."""
        key = -id(table)
        hit = self._cache.get(key)
        if hit is None or hit[0] != table.vocab_version:
            rows = table.lookup(self.ids, add_missing=False)
            hit = self._cache[key] = (table.vocab_version, rows, rows)
        return hit[1]

    def token_ids(self, table: DynamicEmbedding) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, L) ids and mask for every lot, recomputed only when the table's vocabulary changed."""
        hit = self._cache.get(id(table))
        if hit is None or hit[0] != table.vocab_version:
            ids, mask = lookup_padded(table, self.tokens)
            hit = self._cache[id(table)] = (table.vocab_version, ids, mask)
        return hit[1], hit[2]


def lookup_padded(
    table: DynamicEmbedding, rows: Sequence[Sequence[str]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows -> (B, L) ids (no vocabulary change) and mask, with one table lookup for the whole batch."""
    lens = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    width = max(1, int(lens.max(initial=0)))
    flat = table.lookup([t for r in rows for t in r], add_missing=False).numpy()
    row_idx = np.repeat(np.arange(len(rows)), lens)
    col_idx = np.arange(len(flat)) - np.repeat(np.cumsum(lens) - lens, lens)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.float32)
    ids[row_idx, col_idx] = flat
    mask[row_idx, col_idx] = 1.0
    return torch.from_numpy(ids), torch.from_numpy(mask)
