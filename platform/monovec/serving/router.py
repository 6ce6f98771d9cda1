"""The `classifier` app's ingress: HTTP API (DESIGN.md), A/B assignment, recording, admin actions.

Ingress and router are one deployment on purpose, and concurrent single-text requests for one arm
travel to it as one micro-batch (`AdaptiveBatcher` here, `classify_many` there): a Serve hop costs
several milliseconds of CPU on a small box (measured ~8 ms per call on 2 cores), so paying it once per
batch instead of once per request is what keeps the router's overhead within budget. The arms are
separate deployments with their own replicas, batching and autoscaling.

(No `from __future__ import annotations` here: FastAPI must see the request models as real types.)
"""


import asyncio
import hmac
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.exceptions import ActorUnavailableError, RayActorError
from ray.serve.handle import DeploymentHandle
from ray.serve.metrics import Counter, Histogram

from monovec.serving.batcher import AdaptiveBatcher
from monovec.serving.config import ClassifierAppArgs
from monovec.serving.experiment import Experiment
from monovec.serving.page import drift_flags, render_page
from monovec.serving.state import ExperimentStore, RequestRecord, SplitConflict

log = logging.getLogger(__name__)
api = FastAPI(title="monovec classifier", version="1")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


@api.exception_handler(ApiError)
async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return _error(exc.status, exc.code, exc.message)


@api.exception_handler(RequestValidationError)
async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", []) if p != "body") or "body"
    if first.get("type") == "json_invalid":
        return _error(400, "malformed_json", "request body is not valid JSON")
    return _error(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")


@api.exception_handler(Exception)
async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error")
    return _error(500, "internal_error", f"{type(exc).__name__}: the request could not be served")


async def call_arm(call: Callable[[], Awaitable[Any]], arm: str) -> Any:
    """Await a call to an arm, retrying once when its replica died under it.

    Classification is idempotent, so the retry (routed by Serve to a live replica) is safe; without
    it a replica lost mid-batch would fail every request in that batch.
    """
    try:
        return await call()
    except (RayActorError, ActorUnavailableError) as exc:
        log.warning("arm %s: replica lost (%s); retrying once", arm, type(exc).__name__)
        return await call()


def arm_batcher(arm: str, handle: DeploymentHandle, max_batch_size: int, max_in_flight: int) -> AdaptiveBatcher:
    """Concurrent `(text, session_id, request_id)` items for one arm share one `classify_many` call."""

    async def send(items: list[tuple[str, str | None, str | None]]) -> list[dict[str, Any]]:
        texts, session_ids, request_ids = (list(col) for col in zip(*items, strict=True))
        return await call_arm(lambda: handle.classify_many.remote(texts, session_ids, request_ids), arm)

    return AdaptiveBatcher(send, max_batch_size=max_batch_size, max_in_flight=max_in_flight)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ClassifyBody(Strict):
    text: str
    user_id: str | None = None
    session_id: str | None = None


class BatchBody(Strict):
    texts: list[str] = Field(min_length=1)
    user_id: str | None = None
    session_id: str | None = None


class FeedbackBody(Strict):
    request_id: str = Field(min_length=1)
    correct: dict[str, str] | None = None
    satisfied: bool | None = None


class AdminBody(Strict):
    """Optional body of the admin actions; an empty body keeps the old behaviour (CLI, scripts)."""

    expected_treatment_weight: float | None = Field(None, ge=0.0, le=1.0, description="treatment weight the caller saw; 409 stale_split if it moved since")
    reason: str | None = Field(None, min_length=1, max_length=500, description="logged with the decision")


@serve.deployment(name="ExperimentRouter", max_ongoing_requests=256)
@serve.ingress(api)
class ExperimentRouter:
    def __init__(self, args: dict[str, Any], arms: dict[str, DeploymentHandle]) -> None:
        self.args = ClassifierAppArgs.model_validate(args)
        self.arms = arms
        state = Path(self.args.state_dir) if self.args.state_dir else None
        from monovec.paths import state_dir

        path = (state or state_dir()) / "experiments" / f"{self.args.experiment}.sqlite"
        self.info: dict[str, dict[str, Any]] = {}
        self.experiment = Experiment(self.args, ExperimentStore(path))
        specs, b = self.args.arms(), self.args.batching
        self.batchers = {arm: arm_batcher(arm, h, b.max_batch_size, b.router_in_flight or specs[arm].max_replicas()) for arm, h in arms.items()}
        self._guardrail_check: asyncio.Future | None = None
        self._drift_cache: tuple[float, dict[str, Any]] | None = None
        self._requests = Counter("monovec_requests", description="classify requests", tag_keys=("arm", "model_version", "decision"))
        self._errors = Counter("monovec_errors", description="failed classify requests", tag_keys=("arm",))
        self._latency = Histogram("monovec_latency_ms", description="router latency", boundaries=[1, 2, 5, 10, 20, 50, 100, 200, 500, 1000], tag_keys=("arm",))

    async def _arm_info(self, arm: str) -> dict[str, Any]:
        if arm not in self.info:
            self.info[arm] = await self.arms[arm].info.remote()
            if arm in ("control", "treatment"):
                from monovec.tracking.mlflow_store import registry_entry

                spec = self.args.arms()[arm]
                entry = registry_entry(spec.model, str(self.info[arm].get("manifest_version")), self.info[arm].get("name")) if not spec.overrides else None
                self.experiment.registry[arm] = entry
        return self.info[arm]

    def _admin(self, request: Request) -> None:
        token = os.environ.get(self.args.admin_token_env)
        if not token:
            raise ApiError(403, "admin_disabled", f"admin endpoints are disabled: set {self.args.admin_token_env} on the Serve replicas")
        got = request.headers.get("authorization", "")
        if not got.startswith("Bearer ") or not hmac.compare_digest(got[7:], token):
            raise ApiError(401, "unauthorized", "admin endpoints need 'Authorization: Bearer <token>'")

    def _check_text(self, text: str) -> None:
        if len(text) > self.args.max_text_chars:
            raise ApiError(413, "text_too_long", f"text has {len(text)} characters; the limit is {self.args.max_text_chars}")
        if not text.strip():
            raise ApiError(400, "empty_text", "text is empty or only whitespace")

    def _record(self, arm: str, result: dict[str, Any], latency_ms: float, error: bool = False) -> None:
        heads = result.get("heads", {})
        statuses = [h.get("status") for h in heads.values()]
        self.experiment.record(
            RequestRecord(
                request_id=result.get("request_id") or uuid.uuid4().hex,
                arm=arm,
                model_version=result.get("model_version"),
                latency_ms=latency_ms,
                decision=result.get("decision"),
                stage=result.get("stage"),
                unknown="unknown" in statuses,
                low_confidence="low_confidence" in statuses,
                error=error,
                labels={k: v["label"] for k, v in heads.items() if "label" in v},
            )
        )
        self._requests.inc(tags={"arm": arm, "model_version": str(result.get("model_version")), "decision": str(result.get("decision"))})
        self._latency.observe(latency_ms, tags={"arm": arm})

    async def _shadow(self, text: str, session_id: str | None) -> None:
        t0 = time.perf_counter()
        try:
            result = await self.batchers["shadow"].submit((text, session_id, None))
            self._record("shadow", result, (time.perf_counter() - t0) * 1000, error="error" in result)
        except Exception:  # the shadow never affects a response
            log.exception("shadow arm failed")

    @api.post("/v1/classify")
    async def classify(self, body: ClassifyBody, request: Request) -> JSONResponse:
        t0 = time.perf_counter()
        self._check_text(body.text)
        try:
            arm = self.experiment.assign(body.user_id, body.session_id, request.headers.get("x-monovec-arm"))
        except ValueError as exc:
            raise ApiError(400, "bad_arm", str(exc)) from exc
        request_id = uuid.uuid4().hex
        try:
            result = await self.batchers[arm].submit((body.text, body.session_id, request_id))
        except Exception as exc:
            self._errors.inc(tags={"arm": arm})
            self._record(arm, {"request_id": request_id}, (time.perf_counter() - t0) * 1000, error=True)
            raise ApiError(503, "arm_unavailable", f"arm {arm!r} could not answer: {type(exc).__name__}") from exc
        if "error" in result:
            raise ApiError(400, result["error"]["code"], result["error"]["message"])
        if "shadow" in self.arms:
            asyncio.get_running_loop().create_task(self._shadow(body.text, body.session_id))
        latency = (time.perf_counter() - t0) * 1000
        result.update(arm=arm, latency_ms=round(latency, 3))
        self._record(arm, result, latency)
        self._check_guardrails()
        return JSONResponse(result)

    def _check_guardrails(self) -> None:
        """Every `guardrail_check_every` requests, off the request path: one check at a time, in a thread."""
        if not self.experiment.guardrail_check_due() or (self._guardrail_check is not None and not self._guardrail_check.done()):
            return

        def check() -> None:
            if self.experiment.maybe_auto_rollback() is not None:
                log.warning("treatment rolled back automatically")

        self._guardrail_check = asyncio.ensure_future(asyncio.to_thread(check))

    @api.post("/v1/classify/batch")
    async def classify_batch(self, body: BatchBody, request: Request) -> JSONResponse:
        t0 = time.perf_counter()
        if len(body.texts) > self.args.max_batch_items:
            raise ApiError(413, "batch_too_large", f"{len(body.texts)} texts; the limit is {self.args.max_batch_items}")
        try:
            arm = self.experiment.assign(body.user_id, body.session_id, request.headers.get("x-monovec-arm"))
        except ValueError as exc:
            raise ApiError(400, "bad_arm", str(exc)) from exc
        try:
            results = await call_arm(lambda: self.arms[arm].classify_many.remote(body.texts, body.session_id), arm)
        except Exception as exc:
            raise ApiError(503, "arm_unavailable", f"arm {arm!r} could not answer: {type(exc).__name__}") from exc
        latency = (time.perf_counter() - t0) * 1000
        for r in results:
            if "error" not in r:
                r.update(arm=arm, latency_ms=round(latency, 3))
                self._record(arm, r, latency)
        self._check_guardrails()
        return JSONResponse({"results": results})

    @api.post("/v1/feedback")
    async def feedback(self, body: FeedbackBody) -> JSONResponse:
        if body.correct is None and body.satisfied is None:
            raise ApiError(400, "empty_feedback", "feedback needs `correct`, `satisfied` or both")
        try:
            await asyncio.to_thread(self.experiment.feedback, body.request_id, body.correct, body.satisfied)
        except KeyError as exc:
            raise ApiError(404, "unknown_request_id", str(exc).strip("'\"")) from exc
        except ValueError as exc:
            raise ApiError(400, "invalid_feedback", str(exc)) from exc
        return JSONResponse({"ok": True})

    @api.get("/v1/experiment")
    async def experiment(self) -> JSONResponse:
        for arm in self.args.arms():
            await self._arm_info(arm)
        status = await asyncio.to_thread(self.experiment.status)
        status["drift"] = await self._drift()
        for arm, stats in status["arms"].items():
            stats["model_version"] = self.info.get(arm, {}).get("model_version")
        status["admin_enabled"] = bool(os.environ.get(self.args.admin_token_env))
        return JSONResponse(status)

    @api.get("/", response_class=HTMLResponse)
    @api.get("/ui", response_class=HTMLResponse)
    async def page(self, request: Request) -> HTMLResponse:
        """The experiment page for people (`serving/page.py`); it reads `v1/experiment` under the same prefix."""
        page = render_page(request.scope.get("root_path", ""))
        return HTMLResponse(page.html, headers=page.headers)

    async def _drift(self) -> dict[str, Any]:
        """Drift flags per arm, recomputed at most every `drift_refresh_s` (`checked_at` says when): a
        report costs an arm ~0.3 s of CPU (MMD permutations), and an open experiment page polls."""
        now = time.monotonic()
        if self._drift_cache is None or now - self._drift_cache[0] >= self.args.drift_refresh_s:
            checked = datetime.now(UTC).isoformat()
            reports = await self._monitor()
            flags = {arm: {**drift_flags(r, self.args.drift.mmd_alpha), "checked_at": checked} for arm, r in reports.items()}
            self._drift_cache = (now, flags)
        return self._drift_cache[1]

    async def _monitor(self) -> dict[str, Any]:
        out = {}
        for arm, handle in self.arms.items():
            try:
                out[arm] = await handle.monitor_report.remote()
            except Exception as exc:
                out[arm] = {"available": False, "reason": f"{type(exc).__name__}"}
        return out

    @api.get("/v1/monitor")
    async def monitor(self) -> JSONResponse:
        return JSONResponse(await self._monitor())

    @api.post("/v1/experiment/{action}")
    async def admin(self, action: str, request: Request) -> JSONResponse:
        self._admin(request)
        raw = await request.body()
        try:
            body = AdminBody.model_validate_json(raw) if raw.strip() else AdminBody()
        except ValueError as exc:  # pydantic's ValidationError, also for malformed JSON
            raise RequestValidationError(getattr(exc, "errors", list)()) from exc
        for arm in self.args.arms():
            await self._arm_info(arm)
        expected = body.expected_treatment_weight
        try:
            if action == "evaluate":
                out = await asyncio.to_thread(self.experiment.evaluate, expected)
            elif action in ("promote", "rollback"):
                act = self.experiment.promote if action == "promote" else self.experiment.rollback
                out = await asyncio.to_thread(act, body.reason or f"manual {action} via API", None, expected)
            else:
                raise ApiError(404, "unknown_action", f"unknown action {action!r}: use evaluate, promote or rollback")
        except SplitConflict as exc:
            raise ApiError(409, "stale_split", str(exc)) from exc
        return JSONResponse(out)

    @api.get("/healthz")
    async def healthz(self) -> JSONResponse:
        models = {arm: await self._arm_info(arm) for arm in self.arms}
        return JSONResponse({"status": "ok", "models": models, "split": self.experiment.weights})

    def __del__(self) -> None:
        try:
            self.experiment.flush()
        except Exception:
            pass
