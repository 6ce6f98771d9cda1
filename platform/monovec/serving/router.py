"""The `classifier` app's ingress: HTTP API (DESIGN.md), A/B assignment, recording, admin actions.

Ingress and router are one deployment on purpose, and concurrent single-text requests for one arm
travel to it as one micro-batch (`AdaptiveBatcher` here, `classify_many` there): a Serve hop costs
several milliseconds of CPU on a small box (measured ~8 ms per call on 2 cores), so paying it once per
batch instead of once per request is what keeps the router's overhead within budget. The arms are
separate deployments with their own replicas, batching and autoscaling.

Every input problem is answered here, at the edge, in the documented error shape (`http_input`),
before a text is grouped with other requests: a bad text can only fail its own request, and client
mistakes are recorded as input errors, never as arm failures (which feed the error-rate guardrail).

(No `from __future__ import annotations` here: FastAPI must see the request models as real types.)
"""

import asyncio
import hmac
import logging
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
from starlette.exceptions import HTTPException as StarletteHTTPException

from monovec.ray_env import bind_replica_grpc_to_node_ip
from monovec.serving.admin import admin_token
from monovec.serving.batcher import AdaptiveBatcher
from monovec.serving.config import ClassifierAppArgs
from monovec.serving.experiment import Experiment, PromotionRefused
from monovec.serving.http_input import (
    INPUT_ERROR_STATUS,
    ApiError,
    check_headers,
    item_error,
    parse_json,
    parse_model,
    read_body,
    text_problem,
)
from monovec.serving.page import drift_flags, render_page
from monovec.serving.state import ExperimentStore, RequestRecord, SplitConflict, StoreBusy

log = logging.getLogger(__name__)
api = FastAPI(title="monovec classifier", version="1")
ARM_PROBE_TIMEOUT_S = 5.0
"""How long /healthz and /v1/experiment wait for an arm before reporting it unavailable."""


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"error": {"code": code, "message": message}}, headers=headers
    )


@api.exception_handler(ApiError)
async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return _error(exc.status, exc.code, exc.message, exc.headers or None)


@api.exception_handler(RequestValidationError)
async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", []) if p != "body") or "body"
    return _error(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")


@api.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return _error(exc.status_code, code, f"{request.method} {request.url.path}: {exc.detail}")


@api.exception_handler(Exception)
async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error")
    return _error(500, "internal_error", f"{type(exc).__name__}: the request could not be served")


REPLICA_LOSS_BACKOFF_S = (0.05, 0.2, 0.5)
"""Pauses before each retry of an arm call whose replica was lost (at most 0.75 s in all, well inside
`arm_timeout_s`). More than one retry, because Serve drops a replica from its routing set only on
`ActorDiedError`: after `ActorUnavailableError` (the replica's connection lost before the GCS has
declared it dead) it only invalidates the queue-length cache, so an immediate retry can reach the
same dying replica again."""


async def call_arm(
    call: Callable[[], Awaitable[Any]], arm: str, backoff_s: tuple[float, ...] = REPLICA_LOSS_BACKOFF_S
) -> Any:
    """Await a call to an arm, retrying it (`len(backoff_s)` times at most) when its replica died under it.

    Classification and the health probe are idempotent, so a retry (routed by Serve to a live
    replica) is safe. Without it, one replica lost mid-batch would fail every request in that batch,
    and one health probe that reached the lost replica would mark the whole arm unavailable while
    its other replicas serve.

    Raises:
        RayActorError | ActorUnavailableError: the last attempt's error, when every attempt lost its
            replica (e.g. every replica of the arm is down).
    """
    for attempt, delay in enumerate(backoff_s, start=1):
        try:
            return await call()
        except (RayActorError, ActorUnavailableError) as exc:
            log.warning(
                "arm %s: replica lost (%s); retry %d of %d in %.2fs",
                arm,
                type(exc).__name__,
                attempt,
                len(backoff_s),
                delay,
            )
            await asyncio.sleep(delay)
    return await call()


async def probe_arm(
    handle: DeploymentHandle, arm: str, timeout_s: float = ARM_PROBE_TIMEOUT_S
) -> dict[str, Any]:
    """One arm's `health()` answer (the model's info), through `call_arm`.

    Raises:
        TimeoutError: no answer within `timeout_s` seconds, retries included.
        RayActorError | ActorUnavailableError: every attempt reached a lost replica.
        Exception: whatever the arm's health check raised (its model failed the probe).
    """

    async def health() -> dict[str, Any]:
        return await handle.health.remote()

    return await asyncio.wait_for(call_arm(health, arm), timeout_s)


def arm_batcher(
    arm: str, handle: DeploymentHandle, max_batch_size: int, max_in_flight: int
) -> AdaptiveBatcher:
    """Concurrent `(text, session_id, request_id)` items for one arm share one `classify_many` call.

    If a shared call fails for another reason than a lost replica, each item is retried alone, so an
    item that breaks the arm fails only its own request (the rest of the micro-batch is answered).
    """

    async def one(item: tuple[str, str | None, str | None]) -> dict[str, Any]:
        text, session_id, request_id = item
        results = await call_arm(lambda: handle.classify_many.remote([text], [session_id], [request_id]), arm)
        return results[0]

    async def send(items: list[tuple[str, str | None, str | None]]) -> list[Any]:
        texts, session_ids, request_ids = (list(col) for col in zip(*items, strict=True))
        try:
            return await call_arm(lambda: handle.classify_many.remote(texts, session_ids, request_ids), arm)
        except (RayActorError, ActorUnavailableError):
            raise
        except Exception:
            if len(items) == 1:
                raise
            log.warning("arm %s: a batch of %d failed; retrying its items one by one", arm, len(items))
            return list(await asyncio.gather(*(one(item) for item in items), return_exceptions=True))

    return AdaptiveBatcher(send, max_batch_size=max_batch_size, max_in_flight=max_in_flight)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ClassifyBody(Strict):
    text: Any = Field(description="checked by `text_problem`, so a wrong type gets its own error code")
    user_id: str | None = None
    session_id: str | None = None


class BatchBody(Strict):
    texts: list[Any] = Field(
        min_length=1, description="each item checked on its own: one bad item never loses the others"
    )
    user_id: str | None = None
    session_id: str | None = None


class FeedbackBody(Strict):
    request_id: str = Field(min_length=1)
    correct: dict[str, str] | None = None
    satisfied: bool | None = None


class AdminBody(Strict):
    """Optional body of the admin actions; an empty body keeps the old behaviour (CLI, scripts)."""

    expected_treatment_weight: float | None = Field(
        None, ge=0.0, le=1.0, description="treatment weight the caller saw; 409 stale_split if it moved since"
    )
    reason: str | None = Field(None, min_length=1, max_length=500, description="logged with the decision")
    force: bool = Field(False, description="promote even though the treatment breaches a guardrail (logged)")


@serve.deployment(name="ExperimentRouter", max_ongoing_requests=256)
@serve.ingress(api)
class ExperimentRouter:
    """HTTP ingress of the A/B app (`build_app` wires it to one `ClassifierArm` handle per arm).

    Args:
        args: the validated app arguments (the `args:` block of serve_apps/classifier.yaml).
        arms: `{"control" | "treatment" | "shadow": DeploymentHandle}` of the arm deployments.
    """

    def __init__(self, args: ClassifierAppArgs, arms: dict[str, DeploymentHandle]) -> None:
        bind_replica_grpc_to_node_ip()
        self.args = args
        self.arms = arms
        from monovec.paths import state_dir

        state = Path(self.args.state_dir) if self.args.state_dir else state_dir()
        self.info: dict[str, dict[str, Any]] = {}
        self.experiment = Experiment(
            self.args, ExperimentStore(state / "experiments" / f"{self.args.experiment}.sqlite")
        )
        specs, b = self.args.arms(), self.args.batching
        self.batchers = {
            arm: arm_batcher(arm, h, b.max_batch_size, b.router_in_flight or specs[arm].max_replicas())
            for arm, h in arms.items()
        }
        self._guardrail_check: asyncio.Future | None = None
        self.available: dict[str, bool] = dict.fromkeys(arms, True)  # until the first probe says otherwise
        self._arm_watch: asyncio.Task | None = None
        self._drift_cache: tuple[float, dict[str, Any]] | None = None
        self._requests = Counter(
            "monovec_requests", description="classify requests", tag_keys=("arm", "model_version", "decision")
        )
        self._errors = Counter(
            "monovec_errors", description="classify requests an arm failed to answer", tag_keys=("arm",)
        )
        self._latency = Histogram(
            "monovec_latency_ms",
            description="router latency",
            boundaries=[1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
            tag_keys=("arm",),
        )

    # -- input ---------------------------------------------------------------------------------
    async def _body(self, request: Request, model: type[BaseModel]) -> Any:
        """The request body as `model`, or an ApiError (431/413/400/422) before any work is done."""
        check_headers(request.headers.raw, self.args.max_header_bytes)
        raw = await read_body(
            request.headers.get("content-length"), request.stream(), self.args.max_body_bytes
        )
        return parse_model(parse_json(raw), model)

    def _assign(
        self, user_id: str | None, session_id: str | None, request: Request
    ) -> tuple[str, str | None]:
        """(arm that serves the request, arm it was assigned to when that one is unavailable, else None).

        `X-Monovec-Arm` forces an arm; by default only holders of the admin token may (QA): any client
        able to force the treatment could otherwise fill it with traffic of its choosing and move its
        guardrails or the test (see docs/serving.md, "Threats"). A forced arm is never replaced.
        """
        forced = request.headers.get("x-monovec-arm")
        if forced:
            if self.args.arm_override == "off":
                raise ApiError(
                    403, "arm_override_disabled", "X-Monovec-Arm is disabled on this app (arm_override: off)"
                )
            if self.args.arm_override == "admin" and not self._has_admin_token(request):
                raise ApiError(
                    403,
                    "arm_override_forbidden",
                    "X-Monovec-Arm needs the admin token ('Authorization: Bearer <token>')",
                )
        try:
            arm = self.experiment.assign(user_id, session_id, forced)
        except ValueError as exc:
            raise ApiError(400, "bad_arm", str(exc)) from exc
        self._watch_arms()
        if forced or self.available.get(arm, True):
            return arm, None
        spare = next(
            (a for a in ("control", "treatment") if a in self.arms and a != arm and self.available.get(a)),
            None,
        )
        return (spare, arm) if spare else (arm, None)

    def _set_available(self, arm: str, ok: bool, reason: str = "") -> None:
        if ok != self.available.get(arm):
            log.warning(
                "arm %s is %s%s",
                arm,
                "available again" if ok else "UNAVAILABLE",
                f": {reason}" if reason else "",
            )
        self.available[arm] = ok

    def _watch_arms(self) -> None:
        """Probe every arm every `arm_check_s` in the background (started by the first request)."""
        if self._arm_watch is not None and not self._arm_watch.done():
            return

        async def loop() -> None:
            while True:
                await asyncio.gather(*(self._probe(a) for a in self.arms))
                await asyncio.sleep(self.args.arm_check_s)

        self._arm_watch = asyncio.get_running_loop().create_task(loop())

    # -- arms ----------------------------------------------------------------------------------
    @staticmethod
    async def _await(response: Any) -> Any:
        return await response

    async def _probe(self, arm: str) -> dict[str, Any]:
        """`{"status": "ok", ...model info}` when the arm's model answers its health probe within
        `ARM_PROBE_TIMEOUT_S`, else `{"status": "unavailable", "reason"}` (never raises, never hangs)."""
        try:
            info = await probe_arm(self.arms[arm], arm)
        except Exception as exc:
            timed_out = isinstance(exc, TimeoutError)
            reason = (
                f"no answer within {ARM_PROBE_TIMEOUT_S:.0f}s"
                if timed_out
                else f"{type(exc).__name__}: {exc}"[:300]
            )
            self._set_available(arm, False, reason)
            return {"status": "unavailable", "reason": reason}
        self._set_available(arm, True)
        if arm not in self.info and arm in ("control", "treatment"):
            from monovec.tracking.mlflow_store import registry_entry

            spec = self.args.arms()[arm]
            entry = None
            if not spec.overrides:  # MLflow lookup: off the event loop
                entry = await asyncio.to_thread(
                    registry_entry, spec.model, str(info.get("manifest_version")), info.get("name")
                )
            self.experiment.registry[arm] = entry
        self.info[arm] = info
        return {"status": "ok", **info}

    # -- recording -----------------------------------------------------------------------------
    def _record(
        self,
        arm: str,
        result: dict[str, Any],
        latency_ms: float,
        error: bool = False,
        input_error: bool = False,
    ) -> None:
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
                input_error=input_error,
                labels={k: v["label"] for k, v in heads.items() if "label" in v},
            )
        )
        if error:
            self._errors.inc(tags={"arm": arm})
        elif not input_error:
            self._requests.inc(
                tags={
                    "arm": arm,
                    "model_version": str(result.get("model_version")),
                    "decision": str(result.get("decision")),
                }
            )
            self._latency.observe(latency_ms, tags={"arm": arm})

    async def _shadow(self, text: str, session_id: str | None) -> None:
        t0 = time.perf_counter()
        try:
            result = await self.batchers["shadow"].submit((text, session_id, None))
            self._record("shadow", result, (time.perf_counter() - t0) * 1000, input_error="error" in result)
        except Exception:  # the shadow never affects a response
            log.exception("shadow arm failed")

    def _check_guardrails(self) -> None:
        """Every `guardrail_check_every` requests, off the request path: one check at a time, in a thread."""
        if not self.experiment.guardrail_check_due() or (
            self._guardrail_check is not None and not self._guardrail_check.done()
        ):
            return

        def check() -> None:
            if self.experiment.maybe_auto_rollback() is not None:
                log.warning("treatment rolled back automatically")

        self._guardrail_check = asyncio.ensure_future(asyncio.to_thread(check))

    # -- API -----------------------------------------------------------------------------------
    @api.post("/v1/classify")
    async def classify(self, request: Request) -> JSONResponse:
        t0 = time.perf_counter()
        body = await self._body(request, ClassifyBody)
        problem = text_problem(body.text)
        if problem is not None:
            raise problem
        arm, replaced = self._assign(body.user_id, body.session_id, request)
        if not self.available.get(arm, True):  # forced, or no arm left: fail fast instead of waiting for it
            raise ApiError(
                503,
                "arm_unavailable",
                f"arm {arm!r} is not serving (its model failed its health probe)",
                {"Retry-After": "5"},
            )
        request_id = uuid.uuid4().hex
        try:
            result = await asyncio.wait_for(
                self.batchers[arm].submit((body.text, body.session_id, request_id)), self.args.arm_timeout_s
            )
        except Exception as exc:
            self._record(arm, {"request_id": request_id}, (time.perf_counter() - t0) * 1000, error=True)
            why = (
                f"no answer within {self.args.arm_timeout_s:g}s"
                if isinstance(exc, TimeoutError)
                else type(exc).__name__
            )
            raise ApiError(
                503, "arm_unavailable", f"arm {arm!r} could not answer: {why}", {"Retry-After": "5"}
            ) from exc
        latency = (time.perf_counter() - t0) * 1000
        if "error" in result:  # e.g. text that normalises to nothing: the client's input, not the arm
            self._record(arm, {"request_id": request_id}, latency, input_error=True)
            code = result["error"]["code"]
            raise ApiError(INPUT_ERROR_STATUS.get(code, 400), code, result["error"]["message"])
        if "shadow" in self.arms:
            asyncio.get_running_loop().create_task(self._shadow(body.text, body.session_id))
        result.update(arm=arm, latency_ms=round(latency, 3))
        if replaced:
            result["assigned_arm"] = (
                replaced  # the user's arm could not serve: this answer came from the other
            )
        self._record(arm, result, latency)
        self._check_guardrails()
        return JSONResponse(result)

    @api.post("/v1/classify/batch")
    async def classify_batch(self, request: Request) -> JSONResponse:
        """Per-item answers in input order; a bad item gets `{"index", "error"}` and the others are classified."""
        t0 = time.perf_counter()
        body = await self._body(request, BatchBody)
        if len(body.texts) > self.args.max_batch_items:
            raise ApiError(
                413, "batch_too_large", f"{len(body.texts)} texts; the limit is {self.args.max_batch_items}"
            )
        arm, _replaced = self._assign(body.user_id, body.session_id, request)
        if not self.available.get(arm, True):
            raise ApiError(
                503,
                "arm_unavailable",
                f"arm {arm!r} is not serving (its model failed its health probe)",
                {"Retry-After": "5"},
            )
        results: list[dict[str, Any] | None] = [None] * len(body.texts)
        good: list[int] = []
        for i, text in enumerate(body.texts):
            problem = text_problem(text)
            if problem is None:
                good.append(i)
            else:
                results[i] = item_error(problem, i)
        if good:
            texts = [body.texts[i] for i in good]
            request_ids = [uuid.uuid4().hex for _ in good]
            try:
                call = call_arm(
                    lambda: self.arms[arm].classify_many.remote(
                        texts, [body.session_id] * len(good), request_ids
                    ),
                    arm,
                )
                answers = await asyncio.wait_for(call, self.args.arm_timeout_s)
            except Exception as exc:
                latency = (time.perf_counter() - t0) * 1000
                for rid in request_ids:
                    self._record(arm, {"request_id": rid}, latency, error=True)
                raise ApiError(
                    503, "arm_unavailable", f"arm {arm!r} could not answer: {type(exc).__name__}"
                ) from exc
            latency = (time.perf_counter() - t0) * 1000
            for i, rid, answer in zip(good, request_ids, answers, strict=True):
                if "error" in answer:
                    results[i] = {"index": i, "error": answer["error"]}
                    self._record(arm, {"request_id": rid}, latency, input_error=True)
                else:
                    answer.update(arm=arm, latency_ms=round(latency, 3))
                    results[i] = answer
                    self._record(arm, answer, latency)
        for i, r in enumerate(results):
            if r is not None and "error" in r and i not in good:
                self._record(arm, {}, (time.perf_counter() - t0) * 1000, input_error=True)
        self._check_guardrails()
        return JSONResponse({"results": results})

    @api.post("/v1/feedback")
    async def feedback(self, request: Request) -> JSONResponse:
        body = await self._body(request, FeedbackBody)
        if body.correct is None and body.satisfied is None:
            raise ApiError(400, "empty_feedback", "feedback needs `correct`, `satisfied` or both")
        try:
            await asyncio.to_thread(self.experiment.feedback, body.request_id, body.correct, body.satisfied)
        except KeyError as exc:
            raise ApiError(404, "unknown_request_id", str(exc).strip("'\"")) from exc
        except ValueError as exc:
            raise ApiError(400, "invalid_feedback", str(exc)) from exc
        except StoreBusy as exc:
            raise ApiError(503, "store_busy", f"{exc}; try again", {"Retry-After": "2"}) from exc
        return JSONResponse({"ok": True})

    @api.get("/v1/experiment")
    async def experiment(self) -> JSONResponse:
        self._watch_arms()
        probes = dict(
            zip(
                self.args.arms(),
                await asyncio.gather(*(self._probe(a) for a in self.args.arms())),
                strict=True,
            )
        )
        status = await asyncio.to_thread(self.experiment.status)
        for arm, probe in probes.items():
            status["arms"][arm]["available"] = probe["status"] == "ok"
            status["arms"][arm]["model_version"] = self.info.get(arm, {}).get("model_version")
            if probe["status"] != "ok":
                status["arms"][arm]["unavailable_reason"] = probe["reason"]
        status["drift"] = await self._drift()
        status["admin_enabled"] = admin_token(self.args.admin_token_env, self.args.state_dir) is not None
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
            flags = {
                arm: {**drift_flags(r, self.args.drift.mmd_alpha), "checked_at": checked}
                for arm, r in reports.items()
            }
            self._drift_cache = (now, flags)
        return self._drift_cache[1]

    async def _monitor(self) -> dict[str, Any]:
        async def one(handle: DeploymentHandle) -> dict[str, Any]:
            try:
                return await asyncio.wait_for(
                    self._await(handle.monitor_report.remote()), ARM_PROBE_TIMEOUT_S
                )
            except Exception as exc:
                return {"available": False, "reason": f"{type(exc).__name__}"}

        reports = await asyncio.gather(*(one(h) for h in self.arms.values()))
        return dict(zip(self.arms, reports, strict=True))

    @api.get("/v1/monitor")
    async def monitor(self) -> JSONResponse:
        return JSONResponse(await self._monitor())

    def _has_admin_token(self, request: Request) -> bool:
        token = admin_token(self.args.admin_token_env, self.args.state_dir)
        got = request.headers.get("authorization", "")
        return (
            bool(token)
            and got.startswith("Bearer ")
            and hmac.compare_digest(got[7:].encode(), token.encode())
        )

    def _admin(self, request: Request) -> None:
        if not admin_token(self.args.admin_token_env, self.args.state_dir):
            raise ApiError(
                403,
                "admin_disabled",
                f"admin endpoints are disabled: set {self.args.admin_token_env} on the Serve replicas "
                "(or run `monovec serve up`, which creates <state dir>/serve/admin_token)",
            )
        if not self._has_admin_token(request):
            raise ApiError(401, "unauthorized", "admin endpoints need 'Authorization: Bearer <token>'")

    @api.post("/v1/experiment/{action}")
    async def admin(self, action: str, request: Request) -> JSONResponse:
        self._admin(request)
        if action not in ("evaluate", "promote", "rollback"):
            raise ApiError(
                404, "unknown_action", f"unknown action {action!r}: use evaluate, promote or rollback"
            )
        check_headers(request.headers.raw, self.args.max_header_bytes)
        raw = await read_body(
            request.headers.get("content-length"), request.stream(), self.args.max_body_bytes
        )
        body = parse_model(parse_json(raw), AdminBody) if raw.strip() else AdminBody()  # no body: as before
        await asyncio.gather(
            *(self._probe(arm) for arm in self.args.arms())
        )  # registry entries for the alias move
        expected = body.expected_treatment_weight
        try:
            if action == "evaluate":
                out = await asyncio.to_thread(self.experiment.evaluate, expected)
            elif action == "promote":
                out = await asyncio.to_thread(
                    self.experiment.promote,
                    body.reason or "manual promote via API",
                    None,
                    expected,
                    body.force,
                )
            else:
                out = await asyncio.to_thread(
                    self.experiment.rollback, body.reason or "manual rollback via API", None, expected
                )
        except SplitConflict as exc:
            raise ApiError(409, "stale_split", str(exc)) from exc
        except PromotionRefused as exc:
            raise ApiError(409, exc.code, str(exc)) from exc
        except StoreBusy as exc:
            raise ApiError(503, "store_busy", f"{exc}; try again", {"Retry-After": "2"}) from exc
        return JSONResponse(out)

    @api.get("/healthz")
    async def healthz(self) -> JSONResponse:
        """`ok` when every arm's model answers a probe, else `degraded` (503 when no serving arm answers)."""
        self._watch_arms()
        probes = dict(zip(self.arms, await asyncio.gather(*(self._probe(a) for a in self.arms)), strict=True))
        ok = {arm for arm, p in probes.items() if p["status"] == "ok"}
        split = self.experiment.weights
        serving = {arm for arm, w in split.items() if w > 0}
        status = "ok" if len(ok) == len(probes) else "degraded"
        code = 200 if serving & ok else 503
        return JSONResponse({"status": status, "models": probes, "split": split}, status_code=code)

    def __del__(self) -> None:
        try:
            self.experiment.flush()
        except Exception:
            pass
