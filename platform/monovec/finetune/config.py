"""Configuration of the shared-encoder fine-tuning (`jobs/finetune_encoder.py`, Tune target `encoder`).

One job config: the tasks (labelled data, from config like the classifier's heads), the loss weights, the
optimiser, and the shared scaling / Ray / tracking blocks. Tune spaces name fields by dotted path
(`loss.alignment`, `loss.geometry`, `loss.supcon`, `train.lr`, `tasks.emotion.weight`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveFloat, model_validator

from monovec.classify.data import DataSource
from monovec.classify.normalize import NormalizeConfig
from monovec.config import StrictModel
from monovec.faults import FaultConfig
from monovec.infra import RayConfig, ScalingConfig, TrackingConfig

TrainableGroup = Literal["token_table", "ngram", "pool", "dan"]
"""The parameter groups of `monovec.embed.use_torch.UseM3Module` (its `TRAINABLE_GROUPS`; a unit test keeps them equal)."""


class TaskConfig(StrictModel):
    """One supervised task: a classification head on the shared vector, trained with cross-entropy."""

    enabled: bool = Field(
        True, description="train on this task (false keeps the block in the file but skips it)"
    )
    labels: list[str] = Field(
        min_length=2, description="the head's classes; a row's first (mapped) label is its target"
    )
    train: list[DataSource] = Field(
        min_length=1, description="training files (same format as the classifier's heads)"
    )
    dev: list[DataSource] = Field(
        default_factory=list, description="dev files: per-epoch metrics (never trained on)"
    )
    pair_fields: list[str] | None = Field(
        None, min_length=2, max_length=2,
        description="two text fields of one row holding the same text in two languages (GoEmotions: text_en, text_ko): "
                    "the row is one training unit and adds the cross-language alignment loss",
    )  # fmt: skip
    safe_labels: list[str] = Field(
        default_factory=list,
        description="labels that mean not harmful: adds a harmful-vs-not F1 to the metrics",
    )
    weight: float = Field(
        1.0, ge=0, description="multiplier of this task's cross-entropy (and supervised contrastive) loss"
    )
    class_weight: Literal["none", "sqrt", "balanced"] = Field(
        "sqrt", description="cross-entropy weight per class: 1, 1/sqrt(freq) or 1/freq"
    )
    max_rows: int | None = Field(
        None,
        ge=1,
        description="use at most this many training rows (seeded sample): slices for tests and Tune",
    )
    max_dev_rows: int | None = Field(None, ge=1, description="use at most this many dev rows (first rows)")

    @model_validator(mode="after")
    def _consistent(self) -> TaskConfig:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"duplicate labels in {self.labels}")
        unknown = set(self.safe_labels) - set(self.labels)
        if unknown:
            raise ValueError(f"safe_labels {sorted(unknown)} are not task labels")
        if self.pair_fields is not None:
            for src in self.train + self.dev:
                missing = [f for f in self.pair_fields if f not in src.text_fields]
                if missing:
                    raise ValueError(f"pair_fields {missing} are not text_fields of {src.path}")
        return self


class EncoderSideConfig(StrictModel):
    base: Literal["use-m3"] = Field(
        "use-m3", description="the encoder whose weights are fine-tuned (the package's USE-m3)"
    )
    trainable: list[TrainableGroup] = Field(
        default_factory=lambda: ["ngram", "pool", "dan"],
        description="parameter groups that train (token_table, ngram, pool, dan: see monovec.embed.use_torch); the quantised token table is frozen by default",
    )
    max_tokens: int = Field(
        128, ge=8, description="training cuts texts to this many tokens (inference never cuts)"
    )

    @model_validator(mode="after")
    def _something_trains(self) -> EncoderSideConfig:
        if not self.trainable:
            raise ValueError("encoder.trainable is empty: nothing would be fine-tuned")
        return self


class LossConfig(StrictModel):
    """Weights of the loss terms besides each task's cross-entropy (0 switches a term off)."""

    supcon: float = Field(
        0.3, ge=0, description="multi-positive InfoNCE inside a task's batch (same class = positive)"
    )
    supcon_temperature: float = Field(
        0.1, gt=0, description="temperature of the supervised contrastive logits"
    )
    alignment: float = Field(
        1.0, ge=0, description="InfoNCE between the two languages of a pair task's rows (diagonal = positive)"
    )
    alignment_temperature: float = Field(0.05, gt=0, description="temperature of the alignment logits")
    geometry: float = Field(
        3.0, ge=0, description="relational KD to the frozen encoder: MSE of pairwise cosines in each batch"
    )
    head_scale: float = Field(
        16.0, gt=0, description="the heads see scale * the unit vector (a cosine-style logit scale)"
    )
    geometry_anchor_task: str | None = Field(
        None,
        description="a task whose training texts (labels unused; the task need not be enabled) join every "
        "step's geometry loss: `geometry_anchor_batch` of them are encoded with the batch, and their cosines "
        "to the batch and to each other are held to the frozen encoder's. Keeps the neighbourhood of a small "
        "hand-written set (the safety examples a classifier's scorers fit on) as the frozen encoder drew it",
    )
    geometry_anchor_batch: int = Field(
        32, ge=2, description="anchor texts drawn (seeded) per step when `geometry_anchor_task` is set"
    )


class TrainConfig(StrictModel):
    epochs: int = Field(3, ge=1, description="passes over every task's training rows")
    batch_size: int = Field(
        64, ge=2, description="training units per step across all workers (a pair task's unit = 2 texts)"
    )
    lr: float = Field(5e-4, gt=0, description="AdamW learning rate of the encoder's trainable groups")
    head_lr: float = Field(3e-3, gt=0, description="AdamW learning rate of the task heads")
    group_lr_scale: dict[TrainableGroup, PositiveFloat] = Field(
        default_factory=dict,
        description="layer-wise learning rate: a trainable group's lr = lr x its scale (default 1), e.g. "
        "{ngram: 0.25} moves the per-token n-gram layers less than the layers above them (freeze a group with "
        "`encoder.trainable` instead of a scale of 0)",
    )
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    warmup_steps: int = Field(100, ge=0, description="linear learning-rate warm-up, then cosine decay to 10%")
    bucket_batches: int = Field(
        50, ge=1, description="length bucketing: batches formed from sorted windows of this many batches"
    )
    seed: int = Field(0, description="everything random derives from it (sampling, batch order, head init)")
    threads: int = Field(
        2, ge=1, le=64, description="torch threads per training process (set to the cores it owns)"
    )
    eval_batch_texts: int = Field(256, ge=1, description="texts per forward pass when embedding dev data")
    geometry_sample: int = Field(
        1000, ge=10, description="dev texts whose pairwise cosines are compared with the frozen encoder"
    )
    calibration_holdout: float = Field(
        0.15,
        ge=0,
        lt=0.5,
        description="training rows in the classifier's calibration holdout of this fraction (monovec.holdout: a "
        "hash of the normalised text) are never trained on, so a classifier built on this encoder calibrates "
        "on text the encoder has not seen; keep it >= the classifier's calibration_fraction (0 = train on all)",
    )


class FinetuneConfig(StrictModel):
    """`jobs/finetune_encoder.py` configuration."""

    name: str = Field("monovec-encoder", description="run name prefix")
    out_dir: str | None = Field(
        None,
        description="run directory (an existing one is resumed); None = <state dir>/encoders/runs/<name>-<UTC time>",
    )
    cache_dir: str | None = Field(
        None,
        description="frozen-vector + token cache (None = the shared embedding cache, ~/.cache/monovec/embeddings)",
    )
    encoder: EncoderSideConfig = Field(default_factory=EncoderSideConfig)
    normalize: NormalizeConfig = Field(
        default_factory=NormalizeConfig, description="text normalisation, as the classifier applies it"
    )
    tasks: dict[str, TaskConfig] = Field(min_length=1, description="task name -> head and data")
    loss: LossConfig = Field(default_factory=LossConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    scaling: ScalingConfig = Field(
        default_factory=ScalingConfig, description="Ray Train workers (0 = the loop runs in the driver)"
    )
    ray: RayConfig = Field(default_factory=RayConfig, description="which Ray the job joins or starts")
    faults: FaultConfig = Field(
        default_factory=FaultConfig,
        description="fault injection for recovery tests (faults.fail_at_epoch); off",
    )
    objective_task: str = Field(
        "emotion",
        description="task whose dev macro-F1 (mean over languages) is `dev_objective`, what Tune's ASHA reads",
    )
    tracking: TrackingConfig = Field(
        default_factory=lambda: TrackingConfig(
            experiment="monovec-encoder", registered_model="monovec-encoder", alias="newest"
        )
    )

    @model_validator(mode="after")
    def _consistent(self) -> FinetuneConfig:
        active = [n for n, t in self.tasks.items() if t.enabled]
        if not active:
            raise ValueError("every task is disabled: nothing to train on")
        if self.objective_task not in active:
            raise ValueError(f"objective_task {self.objective_task!r} is not an enabled task ({active})")
        if not self.tasks[self.objective_task].dev:
            raise ValueError(f"objective_task {self.objective_task!r} has no dev data")
        anchor = self.loss.geometry_anchor_task
        if anchor is not None and anchor not in self.tasks:
            raise ValueError(f"loss.geometry_anchor_task {anchor!r} is not a task ({sorted(self.tasks)})")
        if anchor is not None and self.loss.geometry == 0:
            raise ValueError(
                "loss.geometry_anchor_task is set but loss.geometry is 0: the anchors would do nothing"
            )
        idle = sorted(set(self.train.group_lr_scale) - set(self.encoder.trainable))
        if idle:  # a scale that would silently do nothing: the group is frozen
            raise ValueError(
                f"train.group_lr_scale sets {idle}, which encoder.trainable {self.encoder.trainable} does not train"
            )
        return self

    def active_tasks(self) -> dict[str, TaskConfig]:
        return {n: t for n, t in self.tasks.items() if t.enabled}
