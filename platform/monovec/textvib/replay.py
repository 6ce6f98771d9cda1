"""Replay buffer across domains: which past training windows are rehearsed, and their stored embeddings.

It keeps references (domain index, window index, class), not the windows themselves, so it is a few
KB in every checkpoint. `reservoir` is Algorithm R over every window seen; `class_balanced` runs one
reservoir per class with an equal share of the capacity. Filling is seeded per domain, so every DDP
worker (and a resumed run) holds the identical buffer. The stored embeddings are refreshed at the end
of each domain and are the reference structure RKD preserves.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class ReplayBuffer:
    def __init__(self, capacity: int, strategy: str, n_classes: int, seed: int = 0) -> None:
        self.capacity = capacity
        self.strategy = strategy
        self.n_classes = n_classes
        self.seed = seed
        self.items = np.zeros((0, 3), dtype=np.int64)  # (domain, index, label)
        self.embeddings: np.ndarray | None = None
        self.seen = np.zeros(n_classes + 1, dtype=np.int64)  # per class, and total (last)

    def __len__(self) -> int:
        return len(self.items)

    def add_domain(self, domain: int, labels: np.ndarray) -> None:
        """Offer every training window of `domain` (in a seeded random order)."""
        rng = np.random.default_rng([self.seed, domain])
        items = [tuple(r) for r in self.items]
        for idx in rng.permutation(len(labels)):
            item = (domain, int(idx), int(labels[idx]))
            if self.strategy == "reservoir":
                self._offer(items, item, lambda _: True, self.capacity, -1, rng)
            else:
                quota = max(1, self.capacity // self.n_classes)
                self._offer(items, item, lambda it, c=item[2]: it[2] == c, quota, item[2], rng)
        self.items = np.array(items, dtype=np.int64).reshape(-1, 3)
        self.embeddings = None

    def _offer(
        self, items: list, item: tuple, same_pool: Any, cap: int, counter: int, rng: np.random.Generator
    ) -> None:
        self.seen[counter] += 1
        pool = [i for i, it in enumerate(items) if same_pool(it)]
        if len(pool) < cap:
            items.append(item)
            return
        j = int(rng.integers(0, self.seen[counter]))
        if j < cap:
            items[pool[j]] = item

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Row indices into `items` (without replacement when possible)."""
        if len(self) == 0:
            return np.zeros(0, dtype=np.int64)
        return rng.choice(len(self), size=min(n, len(self)), replace=False)

    def state_dict(self) -> dict[str, Any]:
        return {
            "items": self.items.copy(),
            "embeddings": None if self.embeddings is None else self.embeddings.copy(),
            "seen": self.seen.copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.items = np.asarray(state["items"], dtype=np.int64).reshape(-1, 3)
        self.embeddings = (
            None if state["embeddings"] is None else np.asarray(state["embeddings"], dtype=np.float32)
        )
        self.seen = np.asarray(state["seen"], dtype=np.int64)
