"""Chroma as the classifier's vector memory: every classified text's one embedding, per model version.

The collection is given the project's own embedding function (Chroma's default downloads a model,
which must never happen here) and is always fed precomputed vectors, so the stored vectors are
exactly the ones the heads saw.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from monovec.paths import state_dir


class ProjectEmbeddingFunction:
    """Chroma embedding-function adapter over a monovec TextEncoder (used for text queries)."""

    def __init__(self, encoder: Any) -> None:
        self._encoder = encoder

    def __call__(self, input: Sequence[str]) -> list[np.ndarray]:  # noqa: A002 - Chroma's protocol name
        return list(self._encoder.encode(list(input)))

    @staticmethod
    def name() -> str:
        return "monovec"

    def embed_query(self, input: Sequence[str]) -> list[np.ndarray]:  # noqa: A002
        return self(input)

    def is_legacy(self) -> bool:
        return False

    def get_config(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ProjectEmbeddingFunction:
        raise NotImplementedError("monovec embedding functions are attached in code, not rebuilt from config")


def chroma_client(path: str | Path | None = None):
    """A Chroma server when one is configured, else a PersistentClient under the state dir.

    `MONOVEC_CHROMA_URL` (e.g. http://chroma.monovec:8000, what the cluster manifests set) wins over
    `CHROMA_HOST`/`CHROMA_PORT`; with neither, everything stays on local disk.
    """
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False, allow_reset=False)
    url = os.environ.get("MONOVEC_CHROMA_URL")
    if url:
        parsed = urlparse(url if "://" in url else f"http://{url}")
        if not parsed.hostname:
            raise ValueError(f"MONOVEC_CHROMA_URL={url!r} has no host")
        return chromadb.HttpClient(
            host=parsed.hostname, port=parsed.port or 8000, ssl=parsed.scheme == "https", settings=settings
        )
    host = os.environ.get("CHROMA_HOST")
    if host:
        return chromadb.HttpClient(
            host=host, port=int(os.environ.get("CHROMA_PORT", "8000")), settings=settings
        )
    local = Path(path) if path else state_dir() / "chroma"
    local.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(local), settings=settings)


class VectorMemory:
    def __init__(self, collection_name: str, encoder: Any, path: str | Path | None = None) -> None:
        self.client = chroma_client(path)
        self.collection = self.client.get_or_create_collection(
            collection_name,
            embedding_function=ProjectEmbeddingFunction(encoder),
            metadata={"hnsw:space": "cosine"},
        )

    @classmethod
    def for_model(cls, pipe: Any, path: str | Path | None = None) -> VectorMemory:
        name = f"{pipe.model.config.name}-{pipe.model.version}".replace("@", "-")
        return cls(name, pipe.encoder, path)

    def add(
        self, ids: list[str], embeddings: np.ndarray, documents: list[str], metadatas: list[dict[str, Any]]
    ) -> None:
        self.collection.upsert(
            ids=ids, embeddings=[e.tolist() for e in embeddings], documents=documents, metadatas=metadatas
        )

    def add_results(self, texts: Sequence[object], results: list[dict[str, Any]]) -> int:
        """Store answers made with `with_embeddings=True`; pops "embedding" so answers stay JSON."""
        rows = [(str(t), r) for t, r in zip(texts, results, strict=True) if "error" not in r]
        if not rows:
            return 0
        if any("embedding" not in r for _, r in rows):
            raise ValueError("results carry no embeddings: classify with with_embeddings=True")
        emb = [r.pop("embedding") for _, r in rows]
        meta = [
            {
                "decision": r["decision"],
                "stage": r["stage"],
                **{f"{h}": v["label"] for h, v in r["heads"].items()},
            }
            for _, r in rows
        ]
        self.add([r["request_id"] for _, r in rows], np.asarray(emb), [t for t, _ in rows], meta)
        return len(rows)

    def nearest(self, text: str, k: int = 5) -> list[dict[str, Any]]:
        res = self.collection.query(query_texts=[text], n_results=k)
        return [
            {"id": i, "document": d, "distance": float(dist), **(m or {})}
            for i, d, dist, m in zip(
                res["ids"][0], res["documents"][0], res["distances"][0], res["metadatas"][0], strict=True
            )
        ]
