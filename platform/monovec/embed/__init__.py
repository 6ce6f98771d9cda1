"""Text encoders behind one protocol (and, later, the dynamic embedding table)."""

from monovec.embed.text import EncoderConfig, TextEncoder, build_encoder

__all__ = ["EncoderConfig", "TextEncoder", "build_encoder"]
