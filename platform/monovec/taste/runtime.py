"""Assemble what every Taste2Vec entry point needs: the catalogue, the frozen text vectors, the scaler, the
per-lot features and (fresh or restored) the model. The job, the simulator and `recommend` share it.

Text vectors are computed once per catalogue text and cached in the shared embedding cache (`monovec.paths.embedding_cache_dir`) (the encoder is frozen).
The sensory table's `init: encoder` rows come from the same encoder through a fixed random projection;
the catalogue's own tokens are encoded in one batch up front, a word first seen in the stream is
encoded when it arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from monovec.embed.cache import embed_texts
from monovec.embed.dynamic import TokenEncoder, project_text_encoder
from monovec.embed.text import EncoderConfig, TextEncoder, build_encoder
from monovec.paths import embedding_cache_dir, resolve_data_path
from monovec.taste.config import CatalogueConfig, ModelConfig
from monovec.taste.data import Catalogue, load_catalogue
from monovec.taste.encoders import NumericScaler
from monovec.taste.model import Taste2Vec
from monovec.taste.records import ItemFeatures

log = logging.getLogger(__name__)

TextFeaturizer = Callable[[Sequence[str]], np.ndarray]  # texts -> (n, d) rows; tests inject a cheap one


class _PrewarmedEncoder:
    """A TextEncoder whose answers for known texts are precomputed; unknown ones go to `live` (built lazily:
    loading the platform encoder costs seconds, and a run without new words never needs it)."""

    def __init__(self, name: str, dim: int, known: dict[str, np.ndarray], live: TextFeaturizer) -> None:
        self.name, self.dim = name, dim
        self._known, self._live = known, live

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._known]
        if missing:
            self._known.update(zip(missing, self._live(missing), strict=True))
        return np.stack([self._known[t] for t in texts])


def _lazy_platform_encoder(config: EncoderConfig) -> TextFeaturizer:
    holder: list[TextEncoder] = []

    def encode(texts: Sequence[str]) -> np.ndarray:
        if not holder:
            holder.append(build_encoder(config))
        return holder[0].encode(list(texts))

    return encode


@dataclass
class Runtime:
    catalogue: Catalogue
    scaler: NumericScaler
    features: ItemFeatures
    token_encoder: TokenEncoder | None
    text_dim: int


def build_runtime(
    catalogue_cfg: CatalogueConfig,
    model_cfg: ModelConfig,
    scaler: NumericScaler | None = None,
    featurizer: TextFeaturizer | None = None,
    cache_dir: str | Path | None = None,
) -> Runtime:
    """`scaler` comes from a checkpoint when resuming (fitted once, never refitted); None fits it now."""
    catalogue = load_catalogue(
        resolve_data_path(catalogue_cfg.coffee_dir),
        catalogue_cfg.include_robusta,
        catalogue_cfg.max_items,
        catalogue_cfg.notes_seed,
    )
    scaler = scaler or NumericScaler.fit(catalogue.scores)
    tokens = [catalogue.tokens(i) for i in range(len(catalogue))]
    text_cfg, token_encoder = model_cfg.text, None
    if not text_cfg.enabled:
        text = np.zeros((len(catalogue), 0), dtype=np.float32)
    else:
        cache = Path(cache_dir) if cache_dir else embedding_cache_dir()
        embed = featurizer or (lambda texts: embed_texts(list(texts), text_cfg.encoder, cache_dir=cache))
        text = embed(catalogue.texts)
        if model_cfg.sensory.init == "encoder":
            vocab = sorted({t for row in tokens for t in row})
            known = dict(zip(vocab, embed(vocab), strict=True))
            live = featurizer or _lazy_platform_encoder(text_cfg.encoder)
            encoder = _PrewarmedEncoder(text_cfg.encoder.name, int(text.shape[1]), known, live)
            token_encoder = project_text_encoder(encoder, model_cfg.sensory.dim, seed=model_cfg.sensory.seed)
    features = ItemFeatures(catalogue.ids, text, scaler.items(catalogue.scores), tokens)
    return Runtime(catalogue, scaler, features, token_encoder, int(text.shape[1]))


def new_model(runtime: Runtime, model_cfg: ModelConfig, seed: int) -> Taste2Vec:
    """A fresh model whose sensory table has counted the catalogue's tokens once (rows for those that reach
    min_count, in catalogue order, so ids are reproducible)."""
    torch.manual_seed(seed)
    model = Taste2Vec(model_cfg, runtime.text_dim, runtime.token_encoder)
    model.table.lookup([t for row in runtime.features.tokens for t in row], add_missing=True)
    if model.items is not None:
        model.items.lookup(runtime.features.ids, add_missing=True)
    return model


def copy_model(model: Taste2Vec) -> Taste2Vec:
    """An independent copy (deepcopy cannot copy the tables' locks): same weights and vocabulary."""
    clone = Taste2Vec(model.config, model.text_dim, None)
    clone.load_state_dict(model.state_dict())
    return clone


def hashing_featurizer(dim: int = 32) -> TextFeaturizer:
    """Deterministic bag-of-hashed-words vectors (L2-normalised): a stand-in for the platform encoder in
    tests and offline smoke runs - no model, same text -> same vector, shared words -> similar vectors."""
    import hashlib

    def encode(texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().replace(",", " ").replace(".", " ").split():
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[i, h % dim] += 1.0 if (h >> 32) & 1 else -1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)

    return encode
