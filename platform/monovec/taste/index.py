"""Lots in Chroma: the project's own embedding function for the collection, and the upsert of item vectors.

Shared by the update job (which refreshes the collection after learning) and recommendation (which
queries it), so neither imports the other. The collection always gets `TasteTextQuery`, never Chroma's
default embedding function (which would download a model).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch

from monovec.taste.config import ChromaConfig
from monovec.taste.data import Catalogue
from monovec.taste.model import Taste2Vec
from monovec.taste.profiles import ProfileStore
from monovec.taste.records import ItemFeatures, lookup_padded
from monovec.taste.runtime import TextFeaturizer
from monovec.tracking.chroma_store import VectorMemory


class TasteTextQuery:
    """Free-text tasting notes ("yuzu, 다크초콜릿, floral") -> a vector in the item space: known vocabulary
    terms found in the text feed the sensory bag, the text encoder (if the model uses one) reads the
    whole string, scores sit at the catalogue mean. Lets `query_texts` work on the collection."""

    def __init__(self, model: Taste2Vec, featurizer: TextFeaturizer | None = None) -> None:
        self.model, self.featurizer = model, featurizer
        self.name, self.dim = "taste2vec-text-query", model.config.dim

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        model = self.model
        vocab = sorted(model.table.vocab(), key=len, reverse=True)
        rows = [
            [t for t in vocab if re.search(rf"(?<!\w){re.escape(t)}(?!\w)", text.lower())] for text in texts
        ]
        ids, mask = lookup_padded(model.table, rows)
        if model.text_dim:
            if self.featurizer is None:
                raise RuntimeError(
                    "this model reads notes text: pass a featurizer (the platform text encoder)"
                )
            text = torch.from_numpy(np.asarray(self.featurizer(list(texts)), dtype=np.float32))
        else:
            text = torch.zeros((len(texts), 0))
        numeric = torch.zeros((len(texts), model.numeric.net[0].in_features))
        model.eval()
        return model._items(text, ids, mask, numeric, None)[0].numpy()  # content only: no lot identity


def item_index(
    model: Taste2Vec, chroma: ChromaConfig, featurizer: TextFeaturizer | None = None
) -> VectorMemory:
    return VectorMemory(chroma.collection, TasteTextQuery(model, featurizer), chroma.path)


@torch.no_grad()
def upsert_items(
    memory: VectorMemory,
    model: Taste2Vec,
    catalogue: Catalogue,
    features: ItemFeatures,
    profiles: ProfileStore,
    learned: int,
) -> int:
    """Embed every lot with the current model and upsert it; metadata carries the lot's pick offset
    (pick bias + w * log(1 + likes)) so a cosine neighbour list can be re-ranked by the model's score."""
    model.eval()
    vectors, biases = (t.numpy() for t in model.encode_catalogue(features))
    likes = profiles.item_view(np.arange(len(catalogue)))[:, 1]
    offset = biases[:, 1] + float(model.item_pop_weight.detach()) * likes
    metadatas = [
        {
            "country": str(m["country"]),
            "process": str(m["process"]),
            "variety": str(m["variety"]),
            "species": str(m["species"]),
            "total": float(m["total"]),
            "notes": ", ".join(catalogue.notes[i]),
            "pick_offset": float(offset[i]),
            "events_learned": learned,
        }
        for i, m in enumerate(catalogue.meta)
    ]
    for start in range(0, len(vectors), 500):  # Chroma caps one request's batch size
        stop = start + 500
        memory.add(
            catalogue.ids[start:stop], vectors[start:stop], catalogue.texts[start:stop], metadatas[start:stop]
        )
    return len(vectors)
