"""The A/B experiment as plain Python: assignment, recording, status, evaluate, promote, rollback.

No Ray here: the Serve router holds one `Experiment` and forwards to it, and unit tests drive it
directly. Every state change goes through `ExperimentStore` (sqlite), so a restarted router picks
up the split, the counters and the decision log where the old one left off. Request records are
written behind (`RequestRecorder`: a request never waits for sqlite, a failed write is retried until
it lands); paths that must touch sqlite on a request (feedback, admin actions) wait at most
`store.request_timeout_s` and then raise `StoreBusy` (the router's 503 with Retry-After).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from monovec.serving.assignment import assign, choose_unit
from monovec.serving.config import ARMS, ClassifierAppArgs
from monovec.serving.guardrails import guardrail_summary
from monovec.serving.recorder import RequestRecorder
from monovec.serving.state import ExperimentStore, RequestRecord, SplitConflict, StoreBusy
from monovec.serving.stats import arm_counts, boundary_plan, decide, rate_intervals, sequential_look

log = logging.getLogger(__name__)


def ramp_position(treatment_weight: float, ramp: list[float]) -> dict[str, Any]:
    """Where the treatment stands on the promote ramp: ``{"steps", "step", "next"}``.

    ``step`` counts the ramp weights already reached (0 = before the first step); ``next`` is the
    weight the next promote moves to (the next ramp step, else 100%), or None at 100%.
    """
    step = sum(1 for w in ramp if w <= treatment_weight + 1e-9)
    ahead = [w for w in ramp if w > treatment_weight + 1e-9]
    nxt = ahead[0] if ahead else (1.0 if treatment_weight < 1.0 - 1e-9 else None)
    return {"steps": list(ramp), "step": step, "next": nxt}


class PromotionRefused(RuntimeError):
    """A promote the rules do not allow now (a breached guardrail, a step too soon); nothing changed.

    `code` is the API error code: `guardrail_breached` or `step_too_soon`.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Experiment:
    """The experiment of one app: assignment, recording, status and the split's changes.

    Args:
        args: the app's arguments (arms, split, guardrails, decision rule, store timeouts).
        store: the sqlite state shared by every router replica and the CLI.
        registry: arm -> `{"name", "version"}` in MLflow, filled by the router once it knows.
    """

    def __init__(
        self, args: ClassifierAppArgs, store: ExperimentStore, registry: dict[str, dict | None] | None = None
    ) -> None:
        self.args = args
        self.store = store
        self.salt = args.salt or args.experiment
        self.registry = registry or {}
        self.store.ensure_split(args.weights())
        self._weights = self.store.get_split() or args.weights()
        self._split_read_at = time.monotonic()
        self._since_check = 0
        self._admin_lock = threading.Lock()  # one split change at a time in this process (store: CAS across)
        self.recorder = RequestRecorder(store, max_pending=args.store.max_pending_records)

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
                raise ValueError(
                    f"X-Monovec-Arm must be one of {[a for a in self.args.arms() if a != 'shadow']}, got {forced!r}"
                )
            return forced
        unit, _kind = choose_unit(user_id, session_id)
        return assign(unit, self.weights, self.salt)

    # -- recording (write-behind) ------------------------------------------------------------
    def record(self, rec: RequestRecord) -> None:
        self.recorder.add(rec)
        if rec.arm in ARMS and not rec.input_error:
            self._since_check += 1

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every recorded request is in sqlite; False when `timeout_s` passed first."""
        return self.recorder.flush(timeout_s)

    def feedback(
        self, request_id: str, correct: dict[str, str] | None, satisfied: bool | None
    ) -> dict[str, Any]:
        """Attach feedback to an answered request (see `ExperimentStore.record_feedback`).

        Raises KeyError (unknown request), ValueError (bad feedback) or StoreBusy (the request's own
        record or the feedback could not be written within `store.request_timeout_s`).
        """
        budget = self.args.store.request_timeout_s
        if not self.flush(budget) and self.recorder.is_pending(request_id):
            raise StoreBusy(f"the request's record is still waiting for the store (waited {budget:g}s)")
        return self.store.record_feedback(request_id, correct=correct, satisfied=satisfied, timeout_s=budget)

    # -- reading -----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Everything `GET /v1/experiment` shows (numbers may trail by the records still pending when the
        store is locked: `recording.pending` says how many)."""
        self.flush(self.args.store.request_timeout_s)
        arms = {arm: self.store.arm_stats(arm) for arm in self.args.arms()}
        for arm, stats in arms.items():
            stats["model"] = self.args.arms()[arm].model
            stats["registry"] = self.registry.get(arm)
            stats["guardrails"] = guardrail_summary(stats, self.args.guardrails)
            stats.update(rate_intervals(stats))
        self.reload_split()  # another router replica or the CLI may have moved it
        out: dict[str, Any] = {"experiment": self.args.experiment, "split": self.weights, "arms": arms}
        out["ramp"] = ramp_position(self.weights.get("treatment", 0.0), self.args.ramp)
        if "treatment" in arms:
            metric = self.args.decision.primary_metric
            control, treatment = arm_counts(arms["control"], metric), arm_counts(arms["treatment"], metric)
            decision = decide(control, treatment, self.args.decision)
            out["test"] = decision.statistics
            guard = arms["treatment"]["guardrails"]
            names = ", ".join(n for n, s in guard["states"].items() if s["state"] == "breached")
            if guard["breached"] and self.weights.get("treatment", 0) > 0:
                out["recommended_action"], out["reason"] = (
                    "rollback",
                    f"treatment breached a guardrail: {names}",
                )
            else:
                out["recommended_action"] = decision.action
                out["reason"] = decision.reason + (
                    f"; the treatment (at 0%) breaches: {names}" if guard["breached"] else ""
                )
            look = sequential_look(control, treatment, self.args.decision)
            if look is not None:  # every look at new data is a point of the test's history
                self.store.record_look({**look, "action": out["recommended_action"]})
            out["test_plan"] = boundary_plan(self.args.decision)
            out["test_history"] = self.store.test_history(limit=200)
        else:
            out["recommended_action"] = "continue_experiment"
            out["reason"] = "no treatment arm"
        out["decision_log"] = self.store.decision_log(limit=20)
        out["recording"] = self.recorder.stats().to_dict()
        return out

    # -- decisions -----------------------------------------------------------------------------
    def guardrail_check_due(self) -> bool:
        """Cheap test for the request path: is a guardrail check (`maybe_auto_rollback`) due?"""
        return (
            self.args.auto_rollback
            and self._since_check >= self.args.guardrail_check_every
            and self.weights.get("treatment", 0.0) > 0
        )

    def maybe_auto_rollback(self) -> dict[str, Any] | None:
        """Called every `guardrail_check_every` requests: roll back a treatment that breaches a guardrail."""
        if not self.args.auto_rollback or self._since_check < self.args.guardrail_check_every:
            return None
        self._since_check = 0
        if self.weights.get("treatment", 0.0) <= 0:
            return None
        self.flush(self.args.store.request_timeout_s)
        summary = guardrail_summary(self.store.arm_stats("treatment"), self.args.guardrails)
        if not summary["breached"]:
            return None
        names = [n for n, s in summary["states"].items() if s.get("state") == "breached"]
        return self.rollback(
            f"automatic: guardrail breached on treatment: {', '.join(names)}", details=summary
        )

    def evaluate(self, expected_treatment_weight: float | None = None) -> dict[str, Any]:
        """Guardrails first (rollback), then the sequential test; promote/ramp when it says so."""
        st = self.status()
        action = st["recommended_action"]
        if action == "rollback":
            return self.rollback(
                f"evaluate: {st['reason']}",
                details=st.get("test"),
                expected_treatment_weight=expected_treatment_weight,
            )
        if action == "promote_to_production":
            try:
                return self.promote(
                    f"evaluate: {st['reason']}",
                    details=st.get("test"),
                    expected_treatment_weight=expected_treatment_weight,
                )
            except PromotionRefused as exc:  # the rule says promote, the ramp's pace says not yet
                st["reason"] = f"{st['reason']}; {exc}"
        self.store.log_decision("continue_experiment", st["reason"], st.get("test"))
        return {"action": "continue_experiment", "reason": st["reason"], "split": self.weights}

    def _treatment_now(self, expected: float | None) -> float:
        """The treatment weight in force (re-read from the store), checked against the caller's view.

        ``expected`` is the treatment weight the caller saw (a page, a script); when it is no longer
        in force, :class:`~monovec.serving.state.SplitConflict` is raised and nothing changes, so a
        double click or a stale page can never apply a step twice or skip one.
        """
        self.reload_split()
        current = self.weights.get("treatment", 0.0)
        if expected is not None and abs(current - expected) > 1e-9:
            raise SplitConflict(self.weights, {"treatment": expected})
        return current

    def _move_treatment(self, current: float, target: float, reason: str, action: str) -> dict[str, float]:
        """Write ``target`` as a compare-and-set on ``current``: another router replica that moved the
        split since we read it makes this raise ``SplitConflict`` instead of overwriting its change."""
        weights = self.store.set_split(
            {"control": 1.0 - target, "treatment": target},
            reason=reason,
            action=action,
            expected={"treatment": current},
            timeout_s=self.args.store.request_timeout_s,
        )
        self._weights = weights
        return weights

    def promote(
        self,
        reason: str = "manual promote",
        details: dict | None = None,
        expected_treatment_weight: float | None = None,
        force: bool = False,
    ) -> dict[str, Any]:
        """One step along ``ramp`` from the split in force (100% at the end, which moves the champion alias).

        Serialised (a lock here, a compare-and-set in the store across replicas) and idempotent: at
        100% another promote changes nothing and moves no alias. Refused (`PromotionRefused`) while
        the treatment breaches a guardrail unless `force`, and, for a caller that does not name the
        weight it expects, within `min_step_interval_s` of the last change (a double click or a
        retried request is not a second step).
        """
        if "treatment" not in self.args.arms():
            raise ValueError("no treatment arm to promote")
        with self._admin_lock:
            current = self._treatment_now(expected_treatment_weight)
            if current >= 1.0 - 1e-9:
                return {
                    "action": "already_promoted",
                    "reason": "the treatment already serves 100%",
                    "split": self.weights,
                    "champion": None,
                    "details": details,
                }
            if not force:
                self._check_promotion_allowed(expected_treatment_weight)
            target = ramp_position(current, self.args.ramp)["next"] or 1.0
            weights = self._move_treatment(current, target, reason, "promote" if target >= 1.0 else "ramp")
            alias = self._move_champion() if target >= 1.0 else None
        return {
            "action": "promote_to_production" if target >= 1.0 else "ramp",
            "reason": reason,
            "split": weights,
            "champion": alias,
            "details": details,
        }

    def _check_promotion_allowed(self, expected: float | None) -> None:
        self.flush(self.args.store.request_timeout_s)
        guard = guardrail_summary(self.store.arm_stats("treatment"), self.args.guardrails)
        if guard["breached"]:
            names = ", ".join(n for n, s in guard["states"].items() if s["state"] == "breached")
            raise PromotionRefused(
                "guardrail_breached",
                f"the treatment breaches a guardrail ({names}): not promoted; send force=true to override",
            )
        if expected is None and self.args.min_step_interval_s > 0:
            last = self.store.last_step()
            if last is not None and time.time() - last < self.args.min_step_interval_s:
                wait = self.args.min_step_interval_s - (time.time() - last)
                raise PromotionRefused(
                    "step_too_soon",
                    f"the last step was {time.time() - last:.0f}s ago; the next is allowed in {wait:.0f}s "
                    "(or name the weight you expect: expected_treatment_weight)",
                )

    def rollback(
        self,
        reason: str = "manual rollback",
        details: dict | None = None,
        expected_treatment_weight: float | None = None,
    ) -> dict[str, Any]:
        """Treatment to weight 0 (the MLflow alias is left alone)."""
        with self._admin_lock:
            current = self._treatment_now(expected_treatment_weight)
            weights = self._move_treatment(current, 0.0, reason, "rollback")
        return {"action": "rollback", "reason": reason, "split": weights, "details": details}

    def _move_champion(self) -> dict[str, str] | None:
        entry = self.registry.get("treatment")
        if not entry:
            self.store.log_decision("alias_unchanged", "treatment model is not in the MLflow registry")
            return None
        from monovec.tracking.mlflow_store import set_alias

        set_alias(entry["name"], self.args.champion_alias, entry["version"])
        self.store.log_decision(
            "alias_moved", f"{entry['name']}@{self.args.champion_alias} -> v{entry['version']}", entry
        )
        return {"name": entry["name"], "alias": self.args.champion_alias, "version": entry["version"]}

    def reload_split(self) -> None:
        """Re-read the split from the store (what another router replica may have changed)."""
        try:
            self._weights = self.store.get_split() or self._weights
        except Exception:  # a locked or unreadable store must not fail a request: keep the last split
            log.exception("could not re-read the split; keeping %s", self._weights)
        self._split_read_at = time.monotonic()
