"""The A/B experiment as plain Python: assignment, recording, status, evaluate, promote, rollback.

No Ray here: the Serve router holds one `Experiment` and forwards to it, and unit tests drive it
directly. Every state change goes through `ExperimentStore` (sqlite), so a restarted router picks
up the split, the counters and the decision log where the old one left off. Request records are
written behind by a background thread (a request never waits for sqlite); `flush()` drains it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from monovec.serving.assignment import assign, choose_unit
from monovec.serving.config import ARMS, ClassifierAppArgs
from monovec.serving.guardrails import guardrail_summary
from monovec.serving.state import ExperimentStore, RequestRecord
from monovec.serving.stats import arm_counts, decide

log = logging.getLogger(__name__)


class Experiment:
    def __init__(self, args: ClassifierAppArgs, store: ExperimentStore, registry: dict[str, dict | None] | None = None) -> None:
        self.args = args
        self.store = store
        self.salt = args.salt or args.experiment
        self.registry = registry or {}
        self.store.ensure_split(args.weights())
        self._weights = self.store.get_split() or args.weights()
        self._split_read_at = time.monotonic()
        self._since_check = 0
        self._queue: queue.Queue[RequestRecord | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write_loop, name="experiment-writer", daemon=True)
        self._writer.start()

    # -- assignment -------------------------------------------------------------------------
    SPLIT_TTL_S = 1.0
    """Router replicas share the split through sqlite: each re-reads it at most this often (a promote or
    rollback through one replica reaches the others within a second)."""

    @property
    def weights(self) -> dict[str, float]:
        if time.monotonic() - self._split_read_at > self.SPLIT_TTL_S:
            self.reload_split()
        return dict(self._weights)

    def assign(self, user_id: str | None, session_id: str | None, forced: str | None = None) -> str:
        if forced:
            if forced not in self.args.arms() or forced == "shadow":
                raise ValueError(f"X-Monovec-Arm must be one of {[a for a in self.args.arms() if a != 'shadow']}, got {forced!r}")
            return forced
        unit, _kind = choose_unit(user_id, session_id)
        return assign(unit, self.weights, self.salt)

    # -- recording (write-behind) ------------------------------------------------------------
    def record(self, rec: RequestRecord) -> None:
        self._queue.put(rec)
        if rec.arm in ARMS:
            self._since_check += 1

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            batch = [item]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            rows = [r for r in batch if r is not None]
            try:
                if rows:
                    self.store.record_requests(rows)
            except Exception:  # never kill the writer; the error is visible in the replica log
                log.exception("could not record %d requests", len(rows))
            finally:
                for _ in batch:
                    self._queue.task_done()

    def flush(self) -> None:
        """Block until every recorded request is in sqlite (feedback, status and shutdown call it)."""
        self._queue.join()

    def feedback(self, request_id: str, correct: dict[str, str] | None, satisfied: bool | None) -> dict[str, Any]:
        self.flush()
        return self.store.record_feedback(request_id, correct=correct, satisfied=satisfied)

    # -- reading -----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        self.flush()
        arms = {arm: self.store.arm_stats(arm) for arm in self.args.arms()}
        for arm, stats in arms.items():
            stats["model"] = self.args.arms()[arm].model
            stats["registry"] = self.registry.get(arm)
            stats["guardrails"] = guardrail_summary(stats, self.args.guardrails)
        out: dict[str, Any] = {"experiment": self.args.experiment, "split": self.weights, "arms": arms}
        if "treatment" in arms:
            metric = self.args.decision.primary_metric
            decision = decide(arm_counts(arms["control"], metric), arm_counts(arms["treatment"], metric), self.args.decision)
            out["test"] = decision.statistics
            breached = arms["treatment"]["guardrails"]["breached"]
            out["recommended_action"] = "rollback" if breached and self.weights.get("treatment", 0) > 0 else decision.action
            out["reason"] = "treatment breached a guardrail" if breached else decision.reason
        else:
            out["recommended_action"] = "continue_experiment"
            out["reason"] = "no treatment arm"
        out["decision_log"] = self.store.decision_log(limit=20)
        return out

    # -- decisions -----------------------------------------------------------------------------
    def guardrail_check_due(self) -> bool:
        """Cheap test for the request path: is a guardrail check (`maybe_auto_rollback`) due?"""
        return self.args.auto_rollback and self._since_check >= self.args.guardrail_check_every and self.weights.get("treatment", 0.0) > 0

    def maybe_auto_rollback(self) -> dict[str, Any] | None:
        """Called every `guardrail_check_every` requests: roll back a treatment that breaches a guardrail."""
        if not self.args.auto_rollback or self._since_check < self.args.guardrail_check_every:
            return None
        self._since_check = 0
        if self.weights.get("treatment", 0.0) <= 0:
            return None
        self.flush()
        summary = guardrail_summary(self.store.arm_stats("treatment"), self.args.guardrails)
        if not summary["breached"]:
            return None
        names = [n for n, s in summary["states"].items() if s.get("state") == "breached"]
        return self.rollback(f"automatic: guardrail breached on treatment: {', '.join(names)}", details=summary)

    def evaluate(self) -> dict[str, Any]:
        """Guardrails first (rollback), then the sequential test; promote/ramp when it says so."""
        st = self.status()
        action = st["recommended_action"]
        if action == "rollback":
            return self.rollback(f"evaluate: {st['reason']}", details=st.get("test"))
        if action == "promote_to_production":
            return self.promote(f"evaluate: {st['reason']}", details=st.get("test"))
        self.store.log_decision("continue_experiment", st["reason"], st.get("test"))
        return {"action": "continue_experiment", "reason": st["reason"], "split": self.weights}

    def promote(self, reason: str = "manual promote", details: dict | None = None) -> dict[str, Any]:
        if "treatment" not in self.args.arms():
            raise ValueError("no treatment arm to promote")
        self.reload_split()  # the step is taken from the stored split, not this replica's copy
        current = self._weights.get("treatment", 0.0)
        steps = [w for w in self.args.ramp if w > current + 1e-9]
        target = steps[0] if steps else 1.0
        weights = self.store.set_split({"control": 1.0 - target, "treatment": target}, reason=reason, action="promote" if target >= 1.0 else "ramp")
        self._weights = weights
        alias = None
        if target >= 1.0:
            alias = self._move_champion()
        return {"action": "promote_to_production" if target >= 1.0 else "ramp", "reason": reason, "split": weights, "champion": alias, "details": details}

    def rollback(self, reason: str = "manual rollback", details: dict | None = None) -> dict[str, Any]:
        weights = self.store.set_split({"control": 1.0, "treatment": 0.0}, reason=reason, action="rollback")
        self._weights = weights
        return {"action": "rollback", "reason": reason, "split": weights, "details": details}

    def _move_champion(self) -> dict[str, str] | None:
        entry = self.registry.get("treatment")
        if not entry:
            self.store.log_decision("alias_unchanged", "treatment model is not in the MLflow registry")
            return None
        from monovec.tracking.mlflow_store import set_alias

        set_alias(entry["name"], self.args.champion_alias, entry["version"])
        self.store.log_decision("alias_moved", f"{entry['name']}@{self.args.champion_alias} -> v{entry['version']}", entry)
        return {"name": entry["name"], "alias": self.args.champion_alias, "version": entry["version"]}

    def reload_split(self) -> None:
        """Re-read the split from the store (what another router replica may have changed)."""
        try:
            self._weights = self.store.get_split() or self._weights
        except Exception:  # a locked or unreadable store must not fail a request: keep the last split
            log.exception("could not re-read the split; keeping %s", self._weights)
        self._split_read_at = time.monotonic()
