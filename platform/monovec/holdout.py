"""The calibration holdout: one rule, shared by the classifier build and encoder fine-tuning, for which
training texts are set aside to calibrate scores.

The classifier calibrates on a slice of its own training sources (never dev): the safety scorers move their
threshold to the slice's F-beta optimum, and the linear heads fit per-class bias offsets on it. That slice
must be text no fitted part has seen. A fine-tuned encoder that trained on the slice breaks this quietly:
its vectors of memorised rows separate better than those of new text, so the thresholds chosen there are
wrong for traffic. Measured on the full K-MHaS build (docs/encoder.md): the Korean profanity scorer's
held-out F1 read 0.92 against 0.80 on the frozen encoder, its operating point dropped from 0.43 to 0.31,
and 27 % of ordinary Korean GoEmotions dev comments were blocked instead of 4 %.

So membership is a property of the text, not of a seeded draw inside one job: a text is in the holdout of
fraction `f` when a keyed BLAKE2b hash of it, read as a number in [0, 1), is below `f`. Every job that
knows `f` agrees on the same rows without sharing state, repeated copies of a text fall on the same side,
and a smaller fraction's holdout is a subset of a larger one's (so an encoder that leaves out 0.15 leaves
out every row a 0.15 or 0.10 calibration slice uses). Callers hash the texts they fit on: the
normalised texts (`monovec.classify.normalize`), which both jobs produce with the same normaliser.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

_KEY = b"monovec-calibration-holdout-v1"
_SCALE = float(2**64)


def holdout_draw(texts: Sequence[str]) -> np.ndarray:
    """(n,) float64 in [0, 1): each text's fixed position under the holdout rule (uniform over texts)."""
    return np.fromiter(
        (
            int.from_bytes(
                hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=8, key=_KEY).digest(), "big"
            )
            / _SCALE
            for t in texts
        ),
        dtype=np.float64,
        count=len(texts),
    )


def in_holdout(texts: Sequence[str], fraction: float) -> np.ndarray:
    """(n,) bool: the texts inside the holdout of `fraction` (0 = none, 1 = all).

    Raises ValueError for a fraction outside [0, 1]."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"holdout fraction must be in [0, 1], got {fraction}")
    return holdout_draw(texts) < fraction
