"""Item vectors in Chroma and nearest-neighbour recommendation for a user in a context.

Lots are embedded once per model version and upserted into a Chroma collection (cosine space, local
PersistentClient under the state dir). A recommendation is the user's query vector - their row plus
their recent contexts and the current one - sent as `query_embeddings`. Since the score is
s * cos + user bias, nearest by cosine is best by score. The collection gets the project's own
embedding function (`TasteTextQuery`: free-text notes -> the item space), never Chroma's default.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from monovec.taste.config import Taste2VecJobConfig
from monovec.taste.encoders import CONTEXT_DIM, NumericScaler, context_features
from monovec.taste.index import item_index
from monovec.taste.model import Taste2Vec
from monovec.taste.profiles import ProfileStore
from monovec.taste.records import Records
from monovec.tracking.chroma_store import VectorMemory


def query_record(
    user: str, history: list[list[float]], profiles: ProfileStore, context: dict[str, Any] | None, L: int
) -> Records:
    """A one-row batch describing `user` now: recent contexts + the given one, recent verdicts."""
    seq = [*history[-(L - 1) :], context_features(context)] if L > 1 else [context_features(context)]
    ctx = np.zeros((1, L, CONTEXT_DIM), dtype=np.float32)
    ctx[0, L - len(seq) :] = seq
    hist, sign, prior = profiles.view(user)
    return Records(
        ["query"],
        [user],
        np.zeros(1, np.int64),
        [[]],
        np.zeros((1, 4), np.float32),
        ctx,
        np.zeros(1, np.float32),
        np.ones(1, np.float32),
        hist[None],
        sign[None],
        np.array([prior], np.float32),
        np.zeros((1, 2), np.float32),
    )


@torch.no_grad()
def query_vector(model: Taste2Vec, record: Records, catalogue: torch.Tensor) -> np.ndarray:
    model.eval()
    q, _ = model.query(record, catalogue)
    return q[0].numpy()


def nearest(
    memory: VectorMemory, query: np.ndarray, k: int, scale: float, oversample: int = 5
) -> list[dict[str, Any]]:
    """k lots for a query: Chroma's k * oversample nearest by cosine, re-ranked by the model's score
    (s' * cos + the lot's pick offset, as `Taste2Vec.catalogue_logits`)."""
    n = min(memory.collection.count(), k * oversample)
    if n == 0:
        return []
    res = memory.collection.query(
        query_embeddings=[query.tolist()], n_results=n, include=["metadatas", "distances"]
    )
    hits = [
        {"item_id": i, "similarity": 1.0 - float(d), **(m or {})}
        for i, d, m in zip(res["ids"][0], res["distances"][0], res["metadatas"][0], strict=True)
    ]
    for h in hits:
        h["score"] = scale * h["similarity"] + float(h.get("pick_offset", 0.0))
    return sorted(hits, key=lambda h: -h["score"])[:k]


def recommend(
    cfg: Taste2VecJobConfig, user: str, k: int = 10, context: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Top-k lots for `user` now (or in `context`) from the newest checkpoint and the Chroma item index."""
    from monovec.taste.checkpoint import MODEL, JobState, job_root, latest_checkpoint, load_train_state
    from monovec.taste.runtime import build_runtime

    ckpt = latest_checkpoint(job_root(cfg))
    if ckpt is None:
        raise FileNotFoundError(
            f"no Taste2Vec checkpoint under {job_root(cfg)}: run jobs/update_taste2vec.py first"
        )
    model = Taste2Vec.load(ckpt / MODEL)
    state = JobState.read(ckpt)
    train = load_train_state(ckpt)
    profiles = ProfileStore(model.config.profile_size)
    profiles.load_state_dict(train["profiles"])
    record = query_record(
        user, train["histories"].get(user, []), profiles, context, model.config.context.history
    )
    # the query pools the vectors of the user's recent lots: recompute them with this model (cached text)
    runtime = build_runtime(
        cfg.catalogue, model.config, scaler=NumericScaler.load(ckpt / MODEL / "scaler.json")
    )
    with torch.no_grad():
        catalogue = model.encode_catalogue(runtime.features)[0]
    query, known = query_vector(model, record, catalogue), user in model.users
    memory = item_index(model, cfg.chroma)
    items = nearest(memory, query, k, float(model.log_pick_scale.detach().exp()))
    indexed = {int(h["events_learned"]) for h in items}
    return {
        "user": user,
        "known_user": known,
        "events_learned": state.learned,
        "index_events_learned": max(indexed) if indexed else None,
        "checkpoint": str(ckpt),
        "items": items,
    }
