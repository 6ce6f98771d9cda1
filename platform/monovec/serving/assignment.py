"""Sticky, weight-based assignment of users to experiment arms.

A unit (user, else session, else a one-off random id) is hashed into a bucket in [0, 1) and
the bucket is compared with cumulative arm weights. Three properties follow and the tests pin them:

* **Sticky**: the bucket depends only on ``(salt, unit_id)`` through SHA-256 -- never Python's
  ``hash()``, which is salted per process, so every replica and every restart agrees.
* **Accurate**: SHA-256 buckets are uniform, so observed shares match weights within sampling error.
* **Minimal movement**: arms are laid out in a fixed order (``control`` first, then the other
  names sorted), so moving 90/10 to 80/20 shrinks control's interval to [0, 0.8) and only the
  users with a bucket in [0.8, 0.9) change arm. Changing the ``salt`` reshuffles everyone; use
  a new salt only for a new experiment.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Mapping
from typing import Literal

CONTROL = "control"
TREATMENT = "treatment"

UnitKind = Literal["user", "session", "random"]

_BUCKET_BITS = 53  # a double holds 53 bits exactly, so bucket < 1.0 always


def bucket(unit_id: str, salt: str = "") -> float:
    """Stable position of ``unit_id`` in [0, 1): the top 53 bits of ``sha256(salt + ":" + unit_id)``."""
    digest = hashlib.sha256(f"{salt}:{unit_id}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") >> (64 - _BUCKET_BITS)) / float(1 << _BUCKET_BITS)


def arm_order(weights: Mapping[str, float]) -> list[str]:
    """The fixed layout order of arms on [0, 1): ``control`` first, then the others by name.

    Independent of dict insertion order, so the same weights always give the same intervals.
    """
    rest = sorted(name for name in weights if name != CONTROL)
    return ([CONTROL] if CONTROL in weights else []) + rest


def normalize_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Validate weights (finite, >= 0, sum > 0, non-empty names) and scale them to sum to 1.

    Returned in :func:`arm_order`. Percentages (90/10) and fractions (0.9/0.1) both work.
    """
    if not weights:
        raise ValueError("weights are empty: name at least one arm")
    for name, w in weights.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"arm names must be non-empty strings, got {name!r}")
        if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w):
            raise ValueError(f"weight of arm {name!r} must be a finite number, got {w!r}")
        if w < 0:
            raise ValueError(f"weight of arm {name!r} is negative ({w})")
    total = float(sum(weights.values()))
    if total <= 0:
        raise ValueError(f"weights sum to {total}; at least one arm needs a positive weight")
    return {name: float(weights[name]) / total for name in arm_order(weights)}


def boundaries(weights: Mapping[str, float]) -> list[tuple[str, float, float]]:
    """``[(arm, lo, hi), ...]``: the half-open bucket interval each arm owns (empty for weight 0)."""
    norm = normalize_weights(weights)
    out: list[tuple[str, float, float]] = []
    lo = 0.0
    for name, w in norm.items():
        hi = lo + w
        out.append((name, lo, hi))
        lo = hi
    return out


def arm_for_bucket(b: float, weights: Mapping[str, float]) -> str:
    """The arm whose interval holds bucket ``b``; a zero-weight arm owns an empty interval."""
    intervals = boundaries(weights)
    for name, _lo, hi in intervals:
        if b < hi:
            return name
    # float rounding can leave the last cumulative sum a hair below 1: give it to the last live arm
    return next(name for name, lo, hi in reversed(intervals) if hi > lo)


def assign(unit_id: str, weights: Mapping[str, float], salt: str = "") -> str:
    """The arm of ``unit_id`` under ``weights``: deterministic, sticky and minimal-movement."""
    return arm_for_bucket(bucket(unit_id, salt), weights)


def moved_share(old: Mapping[str, float], new: Mapping[str, float]) -> float:
    """Share of all units whose arm changes from ``old`` to ``new`` weights (exact, no sampling).

    Worth logging beside a split change: with the fixed layout it equals the weight that moved.
    """
    cuts = sorted({0.0, 1.0, *(hi for _, _, hi in boundaries(old)), *(hi for _, _, hi in boundaries(new))})
    moved = 0.0
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        mid = (lo + hi) / 2
        if hi > lo and arm_for_bucket(mid, old) != arm_for_bucket(mid, new):
            moved += hi - lo
    return moved


def _present(value: str | None) -> bool:
    return value is not None and bool(str(value).strip())


def choose_unit(user_id: str | None, session_id: str | None) -> tuple[str, UnitKind]:
    """The id to hash and its kind: the user if known, else the session, else a fresh random id.

    Users are sticky across sessions and devices; a session only within itself; an anonymous
    request with neither gets a one-off id, so it is assigned at random (still by weight).
    Blank strings count as missing. Returns ``(unit_id, kind)``.
    """
    if _present(user_id):
        return str(user_id).strip(), "user"
    if _present(session_id):
        return str(session_id).strip(), "session"
    return uuid.uuid4().hex, "random"
