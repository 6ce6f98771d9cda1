"""Arguments of the `classifier` Serve app: arms, split, batching, guardrails, decision rule.

This is the `args:` block of `serve_apps/classifier.yaml`; `build_app` validates it before a
single replica starts, so a typo fails `serve deploy` instead of a replica at 3 a.m.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from monovec.config import StrictModel
from monovec.drift import DriftConfig
from monovec.faults import FaultConfig
from monovec.serving.guardrails import GuardrailConfig
from monovec.serving.stats import ExperimentDecisionConfig

ARMS = ("control", "treatment")


class ArmSpec(StrictModel):
    model: str = Field(description="model dir, models:/name/version or models:/name@alias")
    weight: float = Field(0.0, ge=0.0, description="traffic weight (normalised over control+treatment)")
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="classifier config overrides (thresholds), e.g. heads.emotion.gate.margin: 0.1",
    )
    num_replicas: int | str = Field(1, description="replicas, or 'auto' to use autoscaling_config")
    autoscaling_config: dict[str, Any] | None = Field(
        None, description="Serve autoscaling config (min_replicas, max_replicas, target_ongoing_requests)"
    )
    num_cpus: float = Field(
        1.0, gt=0, description="CPUs per replica (also the encoder's thread count, rounded)"
    )
    faults: FaultConfig = Field(
        default_factory=FaultConfig, description="fault injection for tests and drills (off)"
    )

    def max_replicas(self) -> int:
        """Replicas the arm can have at most (autoscaling's max_replicas when 'auto')."""
        if isinstance(self.num_replicas, int):
            return self.num_replicas
        return int((self.autoscaling_config or {}).get("max_replicas", 1))


class BatchingConfig(StrictModel):
    max_batch_size: int = Field(
        32,
        ge=1,
        le=512,
        description="largest batch: the router's micro-batch per arm, and an arm replica's @serve.batch",
    )
    batch_wait_timeout_s: float = Field(
        0.002,
        ge=0.0,
        le=1.0,
        description="how long an arm replica's @serve.batch waits to fill a batch (the router never waits)",
    )
    router_in_flight: int | None = Field(
        None,
        ge=1,
        description="calls the router keeps in flight per arm (default: the arm's replica count); requests arriving meanwhile form the next batch",
    )


class StoreConfig(StrictModel):
    """How the experiment's sqlite state behaves when another writer holds its lock."""

    request_timeout_s: float = Field(
        2.0,
        gt=0,
        le=60,
        description="longest wait for sqlite on a request path (feedback, admin actions, status); then 503 store_busy with Retry-After",
    )
    max_pending_records: int = Field(
        100_000,
        ge=100,
        description="answered requests kept in memory while the store cannot be written; the oldest are dropped past it (counted in recording.dropped)",
    )


class ClassifierAppArgs(StrictModel):
    experiment: str = Field("classifier-ab", description="experiment name: state file and metric tag")
    control: ArmSpec
    treatment: ArmSpec | None = None
    shadow: ArmSpec | None = Field(None, description="receives a mirrored copy of traffic; never answers")
    salt: str | None = Field(None, description="assignment hash salt (default: experiment name)")
    guardrails: GuardrailConfig = Field(default_factory=GuardrailConfig)
    decision: ExperimentDecisionConfig = Field(default_factory=ExperimentDecisionConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    state_dir: str | None = Field(
        None, description="where the experiment sqlite lives (default: $MONOVEC_HOME)"
    )
    admin_token_env: str = Field("MONOVEC_ADMIN_TOKEN", description="env var holding the admin bearer token")
    auto_rollback: bool = Field(
        True, description="roll the treatment back automatically when a guardrail breaches"
    )
    guardrail_check_every: int = Field(50, ge=1, description="check guardrails every N answered requests")
    champion_alias: str = Field("champion", description="MLflow alias moved on promote")
    ramp: list[float] = Field(
        default_factory=list, description="treatment weights for a step-wise promote, e.g. [0.25, 0.5, 1.0]"
    )
    max_batch_items: int = Field(
        256, ge=1, le=10_000, description="texts per /v1/classify/batch request (413 batch_too_large)"
    )
    max_body_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        description="request bodies over this get 413 body_too_large, refused from Content-Length before reading",
    )
    max_header_bytes: int = Field(
        16 * 1024, ge=1024, description="request headers over this (names + values) get 431 headers_too_large"
    )
    router_replicas: int = Field(1, ge=1, description="router replicas (they share the sqlite state)")
    store: StoreConfig = Field(default_factory=StoreConfig)
    min_step_interval_s: float = Field(
        30.0,
        ge=0,
        description="a promote that does not name the weight it expects (expected_treatment_weight) is refused this soon after the last split change: a retried request or a double click is not a second ramp step",
    )
    arm_override: Literal["admin", "anyone", "off"] = Field(
        "admin",
        description="who may force an arm with X-Monovec-Arm: holders of the admin token (QA), anyone, or nobody",
    )
    arm_timeout_s: float = Field(
        15.0,
        gt=0,
        description="an arm call that takes longer fails with 503 arm_unavailable instead of hanging",
    )
    arm_check_s: float = Field(
        2.0,
        gt=0,
        description="how often the router probes each arm's health; traffic for an arm that fails its probe goes to the other arm",
    )
    drift_refresh_s: float = Field(
        10.0,
        ge=0.0,
        description="GET /v1/experiment recomputes its drift flags at most this often (a report costs an arm ~0.3 s of CPU; an open experiment page polls every 5 s); 0 = on every call",
    )

    @model_validator(mode="after")
    def _weights(self) -> ClassifierAppArgs:
        total = self.control.weight + (self.treatment.weight if self.treatment else 0.0)
        if total <= 0:
            raise ValueError("control.weight + treatment.weight must be > 0")
        if any(not 0 < w <= 1 for w in self.ramp) or self.ramp != sorted(self.ramp):
            raise ValueError(f"ramp must be increasing weights in (0, 1], got {self.ramp}")
        return self

    def arms(self) -> dict[str, ArmSpec]:
        out = {"control": self.control}
        if self.treatment is not None:
            out["treatment"] = self.treatment
        if self.shadow is not None:
            out["shadow"] = self.shadow
        return out

    def weights(self) -> dict[str, float]:
        return {name: spec.weight for name, spec in self.arms().items() if name in ARMS}
