"""TextVibCLIP configuration: one job config composed of data / model / train / continual / scaling blocks.

Every switch of the seed's "embedding-space alignment" redesign is a plain field here, so turning all of
them off gives the plain CLIP baseline and a Ray Tune space can name any of them by dotted path
(`model.prototypes.tau`, `model.prototypes.lambda_proto`, `model.prototypes.ema_momentum`,
`model.similarity.lambda_bilinear`, `model.regularizers.lambda_rkd`, `train.lr`,
`train.first_domain_stage1_epochs`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from monovec.config import StrictModel
from monovec.embed.text import EncoderConfig
from monovec.faults import FaultConfig
from monovec.infra import RayConfig, ScalingConfig, TrackingConfig

CWRU_CLASSES = ["IR_7", "IR_14", "IR_21", "B_7", "B_14", "B_21", "OR@6_7", "OR@6_14", "OR@6_21"]
CWRU_DOMAINS = ["1797", "1772", "1750", "1730"]


class WindowConfig(StrictModel):
    length: int = Field(2048, ge=64, description="samples per window")
    hop: int = Field(512, ge=1, description="samples between window starts (hop < length overlaps windows)")
    normalise: Literal["zscore", "none"] = Field("zscore", description="per-window normalisation")


class SplitConfig(StrictModel):
    """Time-ordered split inside each recording: train = first part, val = next, test = the rest (last part)."""

    train: float = Field(
        0.6, gt=0, lt=1, description="fraction of each recording (from its start) for training"
    )
    val: float = Field(0.2, ge=0, lt=1, description="fraction after the training part for validation")

    @model_validator(mode="after")
    def _room_for_test(self) -> SplitConfig:
        if self.train + self.val >= 0.95:
            raise ValueError(
                f"train + val = {self.train + self.val:.2f} leaves < 5% of each recording for test"
            )
        return self


class SynthConfig(StrictModel):
    fs: int = Field(12000, ge=1000, description="sampling rate (Hz)")
    seconds: float = Field(8.0, gt=0.5, description="length of one synthetic recording")
    resonance_hz: float = Field(3000.0, gt=0, description="structural resonance the fault impulses excite")
    damping: float = Field(900.0, gt=0, description="decay rate (1/s) of each impulse response")
    noise: float = Field(0.3, ge=0, description="white-noise standard deviation")
    seed: int = Field(0, description="generator seed (each class/domain derives its own)")


class DataConfig(StrictModel):
    source: Literal["cwru", "npz", "mat", "synthetic"] = Field(
        "cwru",
        description="cwru = shared CWRU npz layout; npz/mat = user folder <root>/<domain>/<class>.(npz|mat); synthetic = generator",
    )
    root: str = Field(
        "data:cwru", description="folder with one sub-folder per domain (`data:` = under the data dir)"
    )
    domains: list[str] = Field(
        default_factory=lambda: list(CWRU_DOMAINS), min_length=1, description="trained in this order"
    )
    classes: list[str] = Field(
        default_factory=lambda: list(CWRU_CLASSES), min_length=2, description="class names = file stems"
    )
    signal_key: str = Field("DE", description="npz key (or .mat key suffix `_<key>_time`) of the signal")
    window: WindowConfig = Field(default_factory=WindowConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    max_train_windows: int | None = Field(
        None, ge=1, description="cap on training windows per recording (smoke slices)"
    )
    max_eval_windows: int | None = Field(
        None, ge=1, description="cap on val/test windows per recording (smoke slices)"
    )
    synthesize_missing: bool = Field(False, description="generate a class a domain lacks instead of failing")
    synth: SynthConfig = Field(default_factory=SynthConfig)


class VibEncoderConfig(StrictModel):
    channels: list[int] = Field(
        default_factory=lambda: [16, 32, 64, 64, 128], min_length=1, description="conv channels per block"
    )
    first_kernel: int = Field(
        64, ge=3, description="wide first kernel (WDCNN-style) to act as a learnt filter bank"
    )
    first_stride: int = Field(8, ge=1, description="stride of the first conv")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout before the feature projection")


class TextSideConfig(StrictModel):
    encoder: EncoderConfig = Field(
        default_factory=lambda: EncoderConfig(threads=1), description="frozen platform text encoder"
    )
    languages: list[Literal["en", "ko"]] = Field(default_factory=lambda: ["en", "ko"], min_length=1)
    adapter_hidden: int = Field(
        128, ge=4, description="bottleneck of the trainable residual adapter on frozen text embeddings"
    )
    center: bool = Field(
        True,
        description="subtract the mean embedding of the training descriptions (class texts share most words)",
    )


class ResidualProjectionConfig(StrictModel):
    enabled: bool = Field(
        True, description="Pre-LN residual MLP stack in both projections (off = single linear)"
    )
    num_layers: int = Field(2, ge=1)
    ffn_mult: int = Field(2, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)


class PrototypeConfig(StrictModel):
    enabled: bool = Field(True, description="class prototypes (K x D anchors) and prototype CE loss")
    tau: float = Field(0.1, gt=0, le=2, description="prototype logit temperature")
    lambda_proto: float = Field(1.0, ge=0, description="prototype CE weight")
    ema_momentum: float = Field(0.99, ge=0, lt=1, description="EMA coefficient of the batch-mean update")
    init_from_text: bool = Field(
        True, description="initialise prototypes from the class means of the text embeddings"
    )


class SimilarityConfig(StrictModel):
    multi_positive: bool = Field(True, description="same class = positive (off = diagonal CLIP InfoNCE)")
    init_temperature: float = Field(0.07, gt=0, description="initial 1/logit_scale")
    max_logit_scale: float = Field(100.0, gt=1, description="clamp of the learnable logit scale")
    bilinear_enabled: bool = Field(
        True, description="bilinear head s(i,j) = t_i^T W v_j with its auxiliary loss"
    )
    lambda_bilinear: float = Field(0.5, ge=0)


class RegularizerConfig(StrictModel):
    rkd_enabled: bool = Field(
        True, description="relational KD: pairwise-cosine structure of replay embeddings is kept"
    )
    lambda_rkd: float = Field(1.0, ge=0)
    lwf_enabled: bool = Field(False, description="LwF slot: KL to the previous domain's prototype logits")
    lambda_lwf: float = Field(1.0, ge=0)
    lwf_temperature: float = Field(2.0, gt=0)


class ModelConfig(StrictModel):
    embed_dim: int = Field(128, ge=8, description="shared space dimension D")
    vib: VibEncoderConfig = Field(default_factory=VibEncoderConfig)
    text: TextSideConfig = Field(default_factory=TextSideConfig)
    residual_projection: ResidualProjectionConfig = Field(default_factory=ResidualProjectionConfig)
    prototypes: PrototypeConfig = Field(default_factory=PrototypeConfig)
    similarity: SimilarityConfig = Field(default_factory=SimilarityConfig)
    regularizers: RegularizerConfig = Field(default_factory=RegularizerConfig)
    procrustes_init: bool = Field(
        True, description="orthogonal Procrustes init of the vibration projection at domain 1"
    )


class TrainConfig(StrictModel):
    epochs_per_domain: int = Field(12, ge=1, description="epochs on each domain (stage 2 on the first)")
    first_domain_stage1_epochs: int = Field(
        3, ge=0, description="stage 1 on domain 1: encoders frozen (0 = one stage)"
    )
    stage1_infonce_weight: float = Field(
        0.1, ge=0, description="weak InfoNCE mixed into stage 1 (prototype CE leads)"
    )
    batch_size: int = Field(64, ge=4)
    lr: float = Field(1e-3, gt=0)
    later_domain_lr_scale: float = Field(
        0.5, gt=0, le=1, description="lr multiplier for domains after the first"
    )
    weight_decay: float = Field(1e-4, ge=0)
    seed: int = Field(0)
    threads: int = Field(1, ge=1, le=64, description="torch threads per training process")


class ReplayConfig(StrictModel):
    enabled: bool = Field(
        True, description="replay buffer across domains (off = naive sequential fine-tuning)"
    )
    strategy: Literal["reservoir", "class_balanced"] = Field("class_balanced")
    capacity: int = Field(540, ge=1, description="windows kept across all domains")
    batch_size: int = Field(32, ge=1, description="replay windows mixed into each step")


class ContinualConfig(StrictModel):
    replay: ReplayConfig = Field(default_factory=ReplayConfig)


class TextVibConfig(StrictModel):
    """`jobs/train_textvib.py` / `monovec textvib train` configuration."""

    name: str = Field("textvib-cwru", description="run name prefix and registered model name")
    out_dir: str | None = Field(
        None, description="run directory; None = <state dir>/textvib/runs/<name>-<UTC time>"
    )
    cache_dir: str | None = Field(
        None,
        description="per-text embedding cache (None = ~/.cache/monovec/embeddings, see monovec.paths.cache_dir)",
    )
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    continual: ContinualConfig = Field(default_factory=ContinualConfig)
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    faults: FaultConfig = Field(
        default_factory=FaultConfig,
        description="fault injection for recovery tests (faults.fail_at_epoch); off",
    )
    plots: bool = Field(True, description="accuracy-matrix heatmap and per-domain PCA PNGs")
    tracking: TrackingConfig = Field(
        default_factory=lambda: TrackingConfig(
            experiment="monovec-textvib", registered_model="monovec-textvib"
        )
    )

    @model_validator(mode="after")
    def _consistent(self) -> TextVibConfig:
        if len(set(self.data.classes)) != len(self.data.classes):
            raise ValueError("data.classes has duplicates")
        if len(set(self.data.domains)) != len(self.data.domains):
            raise ValueError("data.domains has duplicates")
        if self.model.regularizers.rkd_enabled and not self.continual.replay.enabled:
            raise ValueError(
                "model.regularizers.rkd_enabled needs continual.replay.enabled (RKD runs on replay embeddings)"
            )
        return self
