"""The harmful / not-harmful scorer behind a head's block-allow decision.

Measured on K-MHaS dev: a linear model on the sentence embedding alone tops out near F1 0.71,
because Korean hate speech is carried by slurs and coinages (짱깨, 틀딱, 한남...) that a sentence
encoder smooths into "negative opinion". The scorer therefore has an optional lexical channel:
hashed character n-grams (stateless hashing, TF-IDF weights fitted on train), concatenated with the
same one embedding, in one logistic regression. With it F1 is ~0.81 (see the build report).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field

from monovec.config import StrictModel


class LexicalConfig(StrictModel):
    enabled: bool = Field(True, description="add hashed character n-grams to the embedding for P(harmful)")
    ngram_min: int = Field(1, ge=1, le=5)
    ngram_max: int = Field(3, ge=1, le=6)
    n_features: int = Field(2**18, ge=2**10, le=2**22, description="hash buckets")
    C: float = Field(4.0, gt=0, description="inverse L2 strength of the logistic regression")
    max_iter: int = Field(1000, ge=10)


class HarmScorer:
    """P(harmful | text, embedding). Arrays only: weight over [ngram buckets ; embedding], bias, idf."""

    def __init__(
        self, config: LexicalConfig, weight: np.ndarray, bias: float, idf: np.ndarray | None
    ) -> None:
        self.config = config
        self.weight = np.asarray(weight, dtype=np.float32)
        self.bias = float(bias)
        self.idf = None if idf is None else np.asarray(idf, dtype=np.float32)
        self._hasher = None

    def _features(self, texts: Sequence[str], x: np.ndarray):
        import scipy.sparse as sp

        if not self.config.enabled:
            return sp.csr_matrix(x)
        if self._hasher is None:
            from sklearn.feature_extraction.text import HashingVectorizer

            self._hasher = HashingVectorizer(
                analyzer="char_wb",
                ngram_range=(self.config.ngram_min, self.config.ngram_max),
                n_features=self.config.n_features,
                alternate_sign=False,
                norm=None,
            )
        counts = self._hasher.transform(list(texts)).tocsr().astype(np.float32)
        counts.data = 1.0 + np.log(counts.data)  # sublinear tf
        if self.idf is not None:
            counts = counts @ sp.diags(self.idf)
        norms = np.sqrt(counts.multiply(counts).sum(axis=1)).A1
        counts = sp.diags(1.0 / np.maximum(norms, 1e-12)) @ counts
        return sp.hstack([counts, sp.csr_matrix(x)]).tocsr()

    @classmethod
    def fit(
        cls, texts: Sequence[str], x: np.ndarray, harmful: np.ndarray, config: LexicalConfig, seed: int = 0
    ) -> HarmScorer:
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(harmful, dtype=np.int64)
        if len(np.unique(y)) < 2:
            raise ValueError("the harm scorer needs both harmful and not-harmful training examples")
        idf = None
        scorer = cls(config, np.zeros(1), 0.0, None)
        if config.enabled:
            raw = scorer._features(texts, x[:, :0])  # tf only, to count document frequency
            df = np.bincount(raw.indices, minlength=config.n_features)
            idf = (np.log((1 + len(texts)) / (1 + df)) + 1.0).astype(np.float32)
            scorer.idf = idf
        feats = scorer._features(texts, x)
        clf = LogisticRegression(C=config.C, max_iter=config.max_iter, random_state=seed).fit(feats, y)
        return cls(config, clf.coef_[0], float(clf.intercept_[0]), idf)

    def proba(self, texts: Sequence[str], x: np.ndarray) -> np.ndarray:
        z = self._features(texts, np.atleast_2d(x)) @ self.weight + self.bias
        return 1.0 / (1.0 + np.exp(-np.asarray(z).ravel()))

    def state(self) -> dict[str, np.ndarray]:
        s = {"weight": self.weight, "bias": np.array([self.bias], dtype=np.float32)}
        if self.idf is not None:
            s["idf"] = self.idf
        return s

    @classmethod
    def from_state(cls, config: LexicalConfig, state: dict[str, np.ndarray]) -> HarmScorer:
        return cls(config, state["weight"], float(state["bias"][0]), state.get("idf"))
