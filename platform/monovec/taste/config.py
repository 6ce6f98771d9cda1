"""Taste2Vec configuration: the model, the online learner and the update job, one pydantic tree.

`jobs/configs/taste2vec.yaml` is a `Taste2VecJobConfig`; `monovec taste simulate` reads the same file
for its model and learner sections, so the simulation measures exactly what the job runs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from monovec.config import StrictModel
from monovec.embed.dynamic import DynamicEmbeddingConfig
from monovec.embed.text import EncoderConfig
from monovec.faults import FaultConfig
from monovec.infra import RayConfig, ScalingConfig, TrackingConfig


class CatalogueConfig(StrictModel):
    coffee_dir: str = Field(
        "data:coffee", description="folder with the CQI csv files (data: = shared data dir)"
    )
    include_robusta: bool = Field(True, description="add the 28 robusta lots to the 1,311 arabica lots")
    max_items: int | None = Field(None, ge=10, description="seeded random subset of lots (tests); None = all")
    notes_seed: int = Field(0, description="seed of the tasting-notes generator (data.py)")


class TextConfig(StrictModel):
    enabled: bool = Field(True, description="encode each lot's notes text with the platform encoder")
    encoder: EncoderConfig = Field(
        default_factory=lambda: EncoderConfig(threads=2), description="frozen platform text encoder"
    )
    proj_dim: int = Field(64, ge=1, description="trainable projection of the frozen text vector")


class ContextConfig(StrictModel):
    kind: Literal["gru", "mlp"] = Field(
        "gru", description="gru: over the user's recent contexts; mlp: current only"
    )
    hidden: int = Field(32, ge=4, description="context vector width")
    history: int = Field(4, ge=1, le=64, description="contexts in the GRU sequence, the current one included")


def _sensory_default() -> DynamicEmbeddingConfig:
    return DynamicEmbeddingConfig(dim=64, initial_capacity=256, init="encoder", min_count=2, seed=1)


def _items_default() -> DynamicEmbeddingConfig:
    return DynamicEmbeddingConfig(dim=2, initial_capacity=2048, init="random", init_scale=0.01, seed=3)


def _users_default() -> DynamicEmbeddingConfig:
    return DynamicEmbeddingConfig(dim=129, initial_capacity=256, init="mean", min_count=1, seed=2)


class ModelConfig(StrictModel):
    dim: int = Field(128, ge=8, description="taste embedding width (L2-normalised)")
    numeric_hidden: int = Field(64, ge=4, description="numeric encoder width")
    fusion_hidden: int = Field(128, ge=8, description="hidden width of the fusion MLP")
    text: TextConfig = Field(default_factory=TextConfig)
    sensory: DynamicEmbeddingConfig = Field(
        default_factory=_sensory_default,
        description="sensory-vocabulary table; init=encoder uses the text encoder (random if text is off)",
    )
    users: DynamicEmbeddingConfig = Field(
        default_factory=_users_default, description="user table: dim = model dim + 1 (the user's bias)"
    )
    items: DynamicEmbeddingConfig | None = Field(
        default_factory=_items_default,
        description="per-lot biases learned from feedback: dim 1 = like bias, 2 = like + pick bias; null = none",
    )
    context: ContextConfig = Field(default_factory=ContextConfig)
    profile_size: int = Field(
        30, ge=0, le=1000, description="recent verdicts per user pooled into the query (0 = off)"
    )
    ridge_lambda: float = Field(
        1.0, ge=0, description="ridge penalty of the per-user fit on recent verdicts (0 = off)"
    )
    init_scale: float = Field(10.0, gt=0, description="initial cosine temperature (learned)")

    @model_validator(mode="after")
    def _user_width(self) -> ModelConfig:
        if self.users.dim != self.dim + 1:
            raise ValueError(f"users.dim must be dim + 1 = {self.dim + 1} (vector + bias)")
        if self.items is not None and self.items.dim not in (1, 2):
            raise ValueError("items.dim must be 1 (like bias) or 2 (like bias + pick bias)")
        return self


class ReplayConfig(StrictModel):
    capacity: int = Field(5000, ge=1, description="reservoir size (events)")
    ratio: float = Field(2.0, ge=0.0, description="replayed events per new event in every update")


class LearnConfig(StrictModel):
    window: int = Field(100, ge=1, description="events per online update (predict the window, then learn it)")
    steps_per_window: int = Field(2, ge=1, description="optimizer steps per window")
    lr: float = Field(3e-3, gt=0, description="Adam learning rate")
    softmax_weight: float = Field(
        1.0, ge=0, description="weight of the catalogue-softmax (contrastive) loss on liked events"
    )
    bce_weight: float = Field(1.0, ge=0, description="weight of the liked/disliked logistic loss")
    like_threshold: float = Field(
        4.0, ge=1, le=5, description="rating >= this counts as liked when `liked` is absent"
    )
    replay: ReplayConfig = Field(default_factory=ReplayConfig)
    seed: int = Field(0, description="seeds the model init, replay sampling and torch")
    threads: int = Field(
        1, ge=1, le=64, description="torch threads (1 is fastest for these small matrices on a shared CPU)"
    )


class UpdateConfig(StrictModel):
    checkpoint_every: int = Field(
        500, ge=1, description="commit model + watermark every this many learned events"
    )
    register_every: int = Field(
        5000, ge=1, description="register a model version in MLflow every this many events"
    )
    dead_letter: str | None = Field(None, description="dead-letter JSONL; None = <out_dir>/dead_letter.jsonl")


class ChromaConfig(StrictModel):
    enabled: bool = Field(True, description="upsert the item embeddings after each run")
    collection: str = Field("taste2vec-items", description="Chroma collection (under <state>/chroma)")
    path: str | None = Field(None, description="PersistentClient path; None = <state>/chroma")


class Taste2VecJobConfig(StrictModel):
    run_name: str = Field(
        "taste2vec",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Ray Train run name; state lives under out_dir/run_name",
    )
    out_dir: str | None = Field(None, description="None = <state dir>/taste2vec")
    catalogue: CatalogueConfig = Field(default_factory=CatalogueConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    learn: LearnConfig = Field(default_factory=LearnConfig)
    update: UpdateConfig = Field(default_factory=UpdateConfig)
    ray: RayConfig = Field(default_factory=lambda: RayConfig(num_cpus=2))
    scaling: ScalingConfig = Field(
        default_factory=lambda: ScalingConfig(num_workers=0, max_failures=0),
        description="Ray Train workers of the update (0 = run the loop in the driver process)",
    )
    tracking: TrackingConfig = Field(
        default_factory=lambda: TrackingConfig(
            experiment="monovec-taste2vec", registered_model="monovec-taste2vec"
        )
    )
    chroma: ChromaConfig = Field(default_factory=ChromaConfig)
    faults: FaultConfig = Field(
        default_factory=FaultConfig,
        description="fault injection for recovery tests (faults.fail_after_events); off",
    )

    @model_validator(mode="after")
    def _commit_on_window_boundaries(self) -> Taste2VecJobConfig:
        # a resumed run re-forms the same windows only if commits fall on window boundaries
        if self.update.checkpoint_every % self.learn.window:
            raise ValueError(
                f"update.checkpoint_every ({self.update.checkpoint_every}) must be a multiple of learn.window ({self.learn.window})"
            )
        return self
