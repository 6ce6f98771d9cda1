"""One experiment arm: a classifier version behind `@serve.batch`, with its own drift monitor.

The model loader is injected (`loader(ref, threads) -> ClassifierPipeline`) so tests and other
stores can supply their own; the default resolves a directory or an MLflow `models:/` reference.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import numpy as np
from ray import serve

from monovec.classify.pipeline import ClassifierPipeline
from monovec.drift import DriftConfig, DriftMonitor
from monovec.faults import FaultConfig
from monovec.ray_env import bind_replica_grpc_to_node_ip

Loader = Callable[[str, int], ClassifierPipeline]
HEALTH_PROBE = "health check: is the model answering?"


def default_loader(ref: str, threads: int) -> ClassifierPipeline:
    from monovec.classify.service import load_pipeline

    return load_pipeline(ref, threads=threads)


def apply_overrides(pipe: ClassifierPipeline, overrides: dict[str, Any]) -> ClassifierPipeline:
    """A treatment may be the same learned model with other thresholds: re-validate and swap config."""
    if not overrides:
        return pipe
    from monovec.classify.config import ClassifierConfig
    from monovec.config import apply_overrides as apply_dotted

    data = pipe.model.config.model_dump(mode="json")
    apply_dotted(data, [f"{k}={json.dumps(v)}" for k, v in overrides.items()])
    model = pipe.model.with_thresholds(ClassifierConfig.model_validate(data))
    tag = hashlib.sha256(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:6]
    model.manifest = {**model.manifest, "version": f"{pipe.model.version}+{tag}"}
    return ClassifierPipeline(model, encoder=pipe.encoder, escalator=pipe._escalator)


@serve.deployment(name="ClassifierArm", max_ongoing_requests=64, health_check_period_s=5)
class ClassifierArm:
    def __init__(
        self,
        arm: str,
        model_ref: str,
        overrides: dict[str, Any] | None = None,
        threads: int = 1,
        max_batch_size: int = 32,
        batch_wait_timeout_s: float = 0.002,
        drift: dict[str, Any] | None = None,
        loader: Loader | None = None,
        faults: dict[str, Any] | None = None,
    ) -> None:
        bind_replica_grpc_to_node_ip()
        self.arm = arm
        self.model_ref = model_ref
        self.faults = FaultConfig.model_validate(faults or {})
        self.pipe = apply_overrides((loader or default_loader)(model_ref, threads), overrides or {})
        self.classify.set_max_batch_size(max_batch_size)
        self.classify.set_batch_wait_timeout_s(batch_wait_timeout_s)
        ref = self.pipe.model.reference
        self.monitor = DriftMonitor(ref, DriftConfig.model_validate(drift or {})) if ref is not None else None
        self.pipe.warm_up()  # the first user does not pay the encoder's set-up

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.002)
    async def classify(
        self, texts: list[Any], session_ids: list[str | None], request_ids: list[str | None]
    ) -> list[dict[str, Any]]:
        """Called as `classify.remote(text, session_id, request_id)`; Serve hands us one list per argument."""
        return self._classify(texts, session_ids, request_ids)

    async def classify_many(
        self,
        texts: list[Any],
        session_ids: str | list[str | None] | None = None,
        request_ids: list[str | None] | None = None,
    ) -> list[dict[str, Any]]:
        """An already-formed batch in one pass, no queueing: a client's POST /v1/classify/batch (one
        session id for all) or the router's micro-batch of concurrent single requests (one each)."""
        if session_ids is None or isinstance(session_ids, str):
            session_ids = [session_ids] * len(texts)
        return self._classify(texts, session_ids, request_ids)

    def _classify(
        self, texts: list[Any], session_ids: list[str | None], request_ids: list[str | None] | None
    ) -> list[dict[str, Any]]:
        self.faults.check_texts(texts)
        results = self.pipe.classify_batch(texts, session_ids, request_ids, with_embeddings=True)
        vectors = [r.pop("embedding") for r in results if "embedding" in r]
        if self.monitor is not None and vectors:
            self.monitor.update(np.stack(vectors))
        return results

    def info(self) -> dict[str, Any]:
        m = self.pipe.model
        return {
            "arm": self.arm,
            "model": self.model_ref,
            "model_version": m.version,
            "name": m.config.name,
            "manifest_version": m.manifest.get("version"),
        }

    def monitor_report(self) -> dict[str, Any]:
        if self.monitor is None:
            return {"available": False, "reason": "model has no reference sample"}
        return {"available": True, **self.monitor.report()}

    def health(self) -> dict[str, Any]:
        """The router's probe: `check_health` then `info()` in one call."""
        self.check_health()
        return self.info()

    def check_health(self) -> None:
        """Serve's periodic health check (and /healthz's probe): the model must answer a real text.

        Runs the whole pipeline on a fixed probe (no escalation, no drift update), so a broken
        encoder, a head that raises or a model that answers without a decision marks the replica
        unhealthy and Serve replaces it.
        """
        result = self.pipe.classify_batch([HEALTH_PROBE], escalate=False)[0]
        if "decision" not in result:
            raise RuntimeError(f"model {self.model_ref} failed its health probe: {result.get('error')}")
