"""Reservoir replay buffer: a uniform sample of everything learned so far, mixed into every update.

Algorithm R (Vitter 1985): after n events each one is in the buffer with probability capacity / n, so old
tastes keep a voice while the stream moves on - the guard against forgetting users who went quiet.
Seeded, and its whole state (rows, counter, RNG) goes into the checkpoint, so a resumed run samples
exactly what an uninterrupted one would.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from monovec.taste.records import Records


class ReservoirBuffer:
    def __init__(self, capacity: int, seed: int = 0) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self.seen = 0
        self.rng = np.random.default_rng(seed)
        self._rows: list[Records] = []  # one-row Records; concatenated on sample

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, records: Records) -> None:
        for i in range(len(records)):
            self.seen += 1
            if len(self._rows) < self.capacity:
                self._rows.append(records.take([i]))
                continue
            j = int(self.rng.integers(0, self.seen))
            if j < self.capacity:
                self._rows[j] = records.take([i])

    def sample(self, k: int) -> Records | None:
        """Up to k distinct rows, uniformly; None when empty or k == 0."""
        k = min(k, len(self._rows))
        if k <= 0:
            return None
        idx = self.rng.choice(len(self._rows), size=k, replace=False)
        return Records.concat([self._rows[i] for i in sorted(idx.tolist())])

    def event_ids(self) -> list[str]:
        return [r.event_ids[0] for r in self._rows]

    def state_dict(self) -> dict[str, Any]:
        rows = Records.concat(self._rows).columns() if self._rows else None
        return {
            "capacity": self.capacity,
            "seen": self.seen,
            "rng": self.rng.bit_generator.state,
            "rows": rows,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.capacity, self.seen = int(state["capacity"]), int(state["seen"])
        self.rng.bit_generator.state = state["rng"]
        rows = Records.from_columns(state["rows"]) if state["rows"] is not None else None
        self._rows = [rows.take([i]) for i in range(len(rows))] if rows is not None else []
