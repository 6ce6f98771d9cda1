"""Per-user and per-lot memory of verdicts: the fast half of online learning.

Gradient steps move a user's row slowly; counts move at once. For each user the store keeps the latest
`size` (lot, liked/disliked) pairs and the like / total counts; for each lot its like / total counts.
The query tower pools the *current* vectors of the user's recent lots (so the memory stays consistent as
the item tower learns) and the scores add learned multiples of the smoothed like-rate log-odds (user and
lot) and of log(1 + likes) of the lot (how often it gets picked and liked). All of it is state learned
from feedback labels: it is checkpointed with the weights, and the frozen baseline gets a frozen copy.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import numpy as np

from monovec.taste.records import Records


class ProfileStore:
    def __init__(self, size: int) -> None:
        self.size = size
        self.recent: dict[str, list[list[int]]] = {}  # user -> [[item row, +1 | -1], ...] oldest first
        self.counts: dict[str, list[int]] = {}  # user -> [likes, verdicts]
        self.item_counts: dict[int, list[int]] = {}  # catalogue row -> [likes, verdicts]

    def view(self, user: str) -> tuple[np.ndarray, np.ndarray, float]:
        """(items (size,), signs (size,), prior log-odds) of `user` now; zeros for a stranger."""
        items = np.zeros(max(self.size, 1), dtype=np.int64)
        signs = np.zeros(max(self.size, 1), dtype=np.float32)
        recent = self.recent.get(user, [])[-self.size :] if self.size else []
        for k, (item, sign) in enumerate(recent):
            items[k], signs[k] = item, sign
        likes, total = self.counts.get(user, (0, 0))
        return items, signs, math.log((likes + 1.0) / (total - likes + 1.0))

    def item_view(self, items: np.ndarray) -> np.ndarray:
        """(B, 2) [like-rate log-odds, log(1 + likes)] of catalogue rows `items`."""
        out = np.zeros((len(items), 2), dtype=np.float32)
        for k, item in enumerate(np.asarray(items).tolist()):
            likes, total = self.item_counts.get(item, (0, 0))
            out[k] = (math.log((likes + 1.0) / (total - likes + 1.0)), math.log1p(likes))
        return out

    def push_item(self, item: int, liked: bool) -> None:
        counts = self.item_counts.setdefault(int(item), [0, 0])
        counts[0] += int(liked)
        counts[1] += 1

    def push(self, user: str, item: int, liked: bool) -> None:
        counts = self.counts.setdefault(user, [0, 0])
        counts[0] += int(liked)
        counts[1] += 1
        if self.size:
            recent = self.recent.setdefault(user, [])
            recent.append([int(item), 1 if liked else -1])
            del recent[: max(0, len(recent) - self.size)]

    def apply(self, records: Records) -> Records:
        """The records as this (e.g. frozen) store sees their users: hist / hist_sign / prior replaced."""
        views = [self.view(u) for u in records.users]
        return dataclasses.replace(
            records,
            hist=np.stack([v[0] for v in views]) if views else records.hist,
            hist_sign=np.stack([v[1] for v in views]) if views else records.hist_sign,
            prior=np.array([v[2] for v in views], dtype=np.float32),
            item_stats=self.item_view(records.items),
        )

    def copy(self) -> ProfileStore:
        return copy.deepcopy(self)

    def state_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "recent": self.recent,
            "counts": self.counts,
            "item_counts": {str(k): v for k, v in self.item_counts.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.size = int(state["size"])
        self.recent = {u: [list(map(int, p)) for p in r] for u, r in state["recent"].items()}
        self.counts = {u: list(map(int, c)) for u, c in state["counts"].items()}
        self.item_counts = {int(k): list(map(int, c)) for k, c in state.get("item_counts", {}).items()}
