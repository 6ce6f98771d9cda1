"""Fine-tuned USE-m3 encoders: the artifact directory, references to it, and pinning.

A fine-tuned encoder is a directory written by `monovec.finetune` (and registered in MLflow as a version
of `monovec-encoder`):

    encoder.json   manifest: format, base encoder, weights digest, trainable groups, metrics
    weights.npz    the weights in the numpy package's own layout (8-bit token table + float layers)
    heads.npz      the task heads trained with it (not needed to embed)
    config.yaml    the fine-tuning config that produced it

Because the weights keep the package layout, serving runs the package's numpy forward pass on them:
exactly today's speed per text (`bench/encoder_serving.py` measures torch against it).

A reference is what a config's `encoder.name` holds: `models:/monovec-encoder/3`,
`models:/monovec-encoder@<alias>`, or a directory path. `resolve_encoder` turns it into a local directory
plus the exact version and the weights digest; `monovec.embed.text.pin_encoder` rewrites a config to that exact version and digest
(what a classifier build stores, so a moving alias never changes a built model's encoder).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

FORMAT = "monovec-encoder/1"
MANIFEST = "encoder.json"
WEIGHTS = "weights.npz"
BUILTIN = ("use-m3", "minilm")


class EncoderRefError(ValueError):
    """A fine-tuned encoder reference that cannot be used; the message names the reference and why."""


def is_finetuned_ref(name: str) -> bool:
    """True for `models:/...` and path-like references (anything that is not a built-in name or hf:)."""
    return name.startswith("models:/") or (name not in BUILTIN and not name.startswith("hf:"))


def identity(digest: str) -> str:
    """The encoder name a fine-tuned encoder reports (and embedding caches key on): base + digest prefix."""
    return f"use-m3-ft:{digest[:16]}"


@dataclass(frozen=True)
class ResolvedEncoder:
    ref: str  # as written in the config
    pinned: str  # exact: models:/name/<version> or an absolute directory
    path: Path  # local directory holding encoder.json + weights.npz
    digest: str  # sha256 of the weights (monovec.embed.use_torch.weights_digest)
    manifest: dict

    @property
    def name(self) -> str:
        return identity(self.digest)

    @property
    def weights_path(self) -> Path:
        return self.path / WEIGHTS


def read_manifest(directory: str | Path) -> dict:
    """encoder.json of an encoder directory; EncoderRefError if it is not one."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise EncoderRefError(f"not a fine-tuned encoder directory (no {MANIFEST}): {directory}")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise EncoderRefError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    if not (Path(directory) / WEIGHTS).is_file():
        raise EncoderRefError(f"{directory}: {WEIGHTS} is missing")
    return manifest


def resolve_encoder(ref: str, tracking_uri: str | None = None) -> ResolvedEncoder:
    """Local directory, exact version and digest of a fine-tuned encoder reference.

    Registry references are downloaded once into `<state dir>/registry-cache/<name>/<version>`.
    Raises EncoderRefError for an unknown alias/version, a missing directory or a malformed artifact."""
    if ref.startswith("models:/"):
        from monovec.tracking.mlflow_store import registry_entry, resolve_model

        entry = registry_entry(ref, "", uri=tracking_uri)
        if entry is None:
            raise EncoderRefError(f"encoder {ref!r} is not in the MLflow registry; fine-tune one with "
                                  "`python jobs/finetune_encoder.py --config jobs/configs/encoder_finetune.yaml`")  # fmt: skip
        pinned = f"models:/{entry['name']}/{entry['version']}"
        try:
            path = resolve_model(pinned, uri=tracking_uri, marker=MANIFEST)
        except Exception as exc:  # registry reachable but the version or its artefacts are not
            raise EncoderRefError(f"encoder {ref!r} ({pinned}) could not be downloaded: {exc}") from exc
    else:
        path = Path(ref).expanduser().resolve()
        if not path.is_dir():
            raise EncoderRefError(
                f"encoder directory not found: {ref} (or use models:/monovec-encoder/<version> or @<alias>)"
            )
        pinned = str(path)
    manifest = read_manifest(path)
    return ResolvedEncoder(
        ref=ref, pinned=pinned, path=Path(path), digest=str(manifest["digest"]), manifest=manifest
    )


def check_digest(resolved: ResolvedEncoder, expected: str | None) -> None:
    """EncoderRefError when a pinned digest is given and the resolved weights differ from it."""
    if expected and expected != resolved.digest:
        raise EncoderRefError(f"encoder {resolved.ref!r} resolves to weights {resolved.digest[:16]}..., but the config is pinned "
                              f"to {expected[:16]}... (the model was built on other weights)")  # fmt: skip
