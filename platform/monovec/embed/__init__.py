"""Text encoders behind one protocol (`text`), the per-text embedding cache (`cache`) and the dynamic embedding table (`dynamic`)."""

from monovec.embed.dynamic import DynamicEmbedding, DynamicEmbeddingConfig, grow_optimizer_state
from monovec.embed.text import EncoderConfig, TextEncoder, build_encoder

__all__ = [
    "DynamicEmbedding",
    "DynamicEmbeddingConfig",
    "EncoderConfig",
    "TextEncoder",
    "build_encoder",
    "grow_optimizer_state",
]
