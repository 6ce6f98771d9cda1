"""Linear head: multinomial logistic regression on the same embedding the prototypes use.

Fitted full-batch with L-BFGS in torch (80k x 512 in ~10 s on 2 cores), stored as two plain arrays
(no pickle) so a model directory is readable by anything. Prediction is one matmul + softmax.

Macro-F1 rewards rare classes (GoEmotions' fear and disgust are ~1% of rows): class weights of
1/sqrt(frequency) and per-class bias offsets fitted on a held-out slice of *train* (never dev) lift
them without the precision collapse of fully balanced weights (measured in the build report).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field

from monovec.config import StrictModel
from monovec.holdout import in_holdout


class LinearHeadConfig(StrictModel):
    l2: float = Field(1.0, ge=0, description="L2 strength (sklearn's 1/C)")
    class_weight: Literal["none", "sqrt", "balanced"] = Field(
        "sqrt", description="loss weight per class: 1, 1/sqrt(freq) or 1/freq"
    )
    calibrate_bias: bool = Field(
        True, description="fit per-class bias offsets for macro-F1 on a held-out slice of train"
    )
    calibration_fraction: float = Field(
        0.15,
        gt=0,
        lt=0.5,
        description="share of train held out for bias calibration (monovec.holdout when the build passes texts)",
    )
    max_iter: int = Field(100, ge=5, description="L-BFGS iterations")
    threshold: float = Field(
        0.45,
        ge=0.0,
        le=1.0,
        description="top probability needed to trust the head when prototypes were not confident",
    )
    overrides_prototype: bool = Field(
        False,
        description="a linear head at or above `threshold` decides when it disagrees with a confident prototype (emotion: prototypes of the Reddit data put plainly stated anger and fear in the sadness cluster)",
    )


def _class_weights(y: np.ndarray, n_classes: int, mode: str) -> np.ndarray | None:
    if mode == "none":
        return None
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1), 0.0)
    w = np.sqrt(w) if mode == "sqrt" else w
    return (w / w[counts > 0].mean()).astype(np.float32)


def fit_softmax(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    l2: float,
    weight: np.ndarray | None,
    max_iter: int,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    import torch

    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(y.astype(np.int64))
    w = torch.zeros(n_classes, x.shape[1], requires_grad=True)
    b = torch.zeros(n_classes, requires_grad=True)
    cw = None if weight is None else torch.from_numpy(weight)
    opt = torch.optim.LBFGS([w, b], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w.T + b, yt, weight=cw) + l2 * (w**2).sum() / (
            2 * len(xt)
        )
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), b.detach().numpy()


def calibrate_bias(logits: np.ndarray, y: np.ndarray, n_classes: int, rounds: int = 3) -> np.ndarray:
    """Coordinate ascent on per-class additive offsets maximising macro-F1 on held-out logits."""
    from monovec.metrics import macro_f1_codes

    y = np.asarray(y, np.int64)

    def score(bias: np.ndarray) -> float:
        return macro_f1_codes(y, np.argmax(logits + bias, axis=1), n_classes)

    bias = np.zeros(n_classes, dtype=np.float32)
    best = score(bias)
    grid = np.linspace(-2.0, 3.0, 26)
    for _ in range(rounds):
        improved = False
        for c in range(n_classes):
            for d in grid:
                trial = bias.copy()
                trial[c] = d
                s = score(trial)
                if s > best + 1e-6:
                    best, bias, improved = s, trial, True
        if not improved:
            break
    return bias


class LinearHead:
    def __init__(self, labels: list[str], weight: np.ndarray, bias: np.ndarray) -> None:
        self.labels = list(labels)
        self.weight = np.asarray(weight, dtype=np.float32)
        self.bias = np.asarray(bias, dtype=np.float32)
        if self.weight.shape[0] != len(self.labels) or self.bias.shape != (len(self.labels),):
            raise ValueError(
                f"weight {self.weight.shape} / bias {self.bias.shape} do not fit {len(self.labels)} labels"
            )

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        labels: list[str],
        config: LinearHeadConfig,
        seed: int = 0,
        texts: Sequence[str] | None = None,
    ) -> LinearHead:
        """Softmax regression on (n, dim) rows `x` with targets `y` (n,) in [0, len(labels)).

        With `calibrate_bias`, per-class bias offsets for macro-F1 come from a held-out share of the rows:
        the texts' calibration holdout (`monovec.holdout`) when `texts` (the n normalised texts) are given,
        else a seeded random share. Raises ValueError when fewer than two classes have rows."""
        k = len(labels)
        present = np.unique(y)
        if len(present) < 2:
            raise ValueError(
                f"a linear head needs at least two classes with examples, got {[labels[i] for i in present]}"
            )
        offset = np.zeros(k, dtype=np.float32)
        if config.calibrate_bias and len(x) >= 200:
            held = in_holdout(texts, config.calibration_fraction) if texts is not None else None
            if held is not None and held.any() and not held.all():  # unseen by a fine-tuned encoder too
                tr, va = np.flatnonzero(~held), np.flatnonzero(held)
            else:
                perm = np.random.default_rng(seed).permutation(len(x))
                cut = int(len(x) * (1 - config.calibration_fraction))
                tr, va = perm[:cut], perm[cut:]
            w, b = fit_softmax(
                x[tr],
                y[tr],
                k,
                config.l2,
                _class_weights(y[tr], k, config.class_weight),
                config.max_iter,
                seed,
            )
            offset = calibrate_bias(x[va] @ w.T + b, y[va], k)
        w, b = fit_softmax(
            x, y, k, config.l2, _class_weights(y, k, config.class_weight), config.max_iter, seed
        )
        b = b + offset
        b[np.bincount(y, minlength=k) == 0] = -30.0  # a class never seen is never predicted
        return cls(labels, w, b)

    def proba(self, x: np.ndarray) -> np.ndarray:
        logits = np.atleast_2d(x) @ self.weight.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def state(self) -> dict[str, np.ndarray]:
        return {"weight": self.weight, "bias": self.bias}

    @classmethod
    def from_state(cls, labels: list[str], state: dict[str, np.ndarray]) -> LinearHead:
        return cls(labels, state["weight"], state["bias"])
