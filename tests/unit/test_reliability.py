"""The experiment under faults, without Ray: a locked store, retries, concurrent promotes, redeploys."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from monovec.serving.config import ClassifierAppArgs
from monovec.serving.experiment import Experiment, PromotionRefused
from monovec.serving.recorder import RequestRecorder
from monovec.serving.state import ExperimentStore, RequestRecord, StoreBusy


def _args(**kw) -> ClassifierAppArgs:  # noqa: ANN003
    base = {
        "control": {"model": "a", "weight": 0.9},
        "treatment": {"model": "b", "weight": 0.1},
        "ramp": [0.25, 0.5, 1.0],
    }
    return ClassifierAppArgs.model_validate({**base, **kw})


def _rec(i: int, arm: str = "control", **kw) -> RequestRecord:  # noqa: ANN003
    fields = {
        "model_version": "1",
        "latency_ms": 5.0,
        "decision": "allow",
        "stage": "prototype",
        "labels": {"emotion": "joy"},
        **kw,
    }
    return RequestRecord(f"r{i}", arm, **fields)


class FlakySink:
    """Fails its first `failures` writes, then stores."""

    def __init__(self, failures: int) -> None:
        self.failures, self.rows = failures, []

    def record_requests(self, rows: list) -> int:
        if self.failures > 0:
            self.failures -= 1
            raise sqlite3.OperationalError("database is locked")
        self.rows.extend(rows)
        return len(rows)


def test_failed_writes_are_retried_until_every_record_lands() -> None:
    sink = FlakySink(failures=3)
    rec = RequestRecorder(sink, retry_initial_s=0.01, retry_max_s=0.02)
    for i in range(50):
        rec.add(_rec(i))
    assert rec.flush(timeout_s=10)
    assert [r.request_id for r in sink.rows] == [f"r{i}" for i in range(50)]  # all, once, in order
    stats = rec.stats()
    assert stats.written == 50 and stats.failed_writes == 3 and stats.dropped == 0 and stats.pending == 0


def test_the_buffer_is_bounded_and_counts_what_it_drops() -> None:
    sink = FlakySink(failures=10**9)  # the store never comes back
    rec = RequestRecorder(sink, max_pending=100, retry_initial_s=0.01, retry_max_s=0.01)
    for i in range(250):
        rec.add(_rec(i))
    assert not rec.flush(timeout_s=0.2)  # a bounded wait, never a hang
    stats = rec.stats()
    assert stats.pending <= 100 and stats.dropped >= 150 and "locked" in (stats.last_error or "")


def _hold_write_lock(path: Path, seconds: float, started: threading.Event) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    started.set()
    time.sleep(seconds)
    conn.execute("COMMIT")
    conn.close()


def test_a_locked_store_delays_records_but_loses_none_and_feedback_fails_fast(tmp_path: Path) -> None:
    path = tmp_path / "exp.sqlite"
    store = ExperimentStore(path)
    store.busy_timeout_s = 0.2  # the background writer gives up quickly and retries (production: 30 s)
    exp = Experiment(_args(store={"request_timeout_s": 0.3}), store)
    exp.record(_rec(0))
    assert exp.flush(5)
    started = threading.Event()
    locker = threading.Thread(target=_hold_write_lock, args=(path, 3.0, started))
    locker.start()
    started.wait(5)
    for i in range(1, 31):
        exp.record(_rec(i))
    with pytest.raises(StoreBusy):
        exp.feedback("r0", {"emotion": "joy"}, True)  # its own record is on disk, but the lock is held
    with pytest.raises(StoreBusy):
        exp.feedback("r5", {"emotion": "joy"}, True)  # still waiting in the buffer
    locker.join()
    assert exp.flush(10)
    assert store.arm_stats("control")["n"] == 31  # answered = recorded
    assert exp.feedback("r5", {"emotion": "joy"}, True)["heads"] == {"emotion": True}


def test_concurrent_promotes_without_a_view_take_one_step(tmp_path: Path) -> None:
    exp = Experiment(_args(), ExperimentStore(tmp_path / "exp.sqlite"))
    results: list[object] = []

    def click() -> None:
        try:
            results.append(exp.promote("double click")["split"]["treatment"])
        except PromotionRefused as exc:
            results.append(exc.code)

    threads = [threading.Thread(target=click) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(map(str, results)) == ["0.25", "step_too_soon", "step_too_soon", "step_too_soon"]
    assert exp.weights["treatment"] == pytest.approx(0.25)


def test_the_alias_moves_once_and_a_promote_at_100_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    moved: list[str] = []
    monkeypatch.setattr(
        "monovec.tracking.mlflow_store.set_alias",
        lambda name, alias, version, uri=None: moved.append(version),
    )
    exp = Experiment(
        _args(),
        ExperimentStore(tmp_path / "exp.sqlite"),
        registry={"treatment": {"name": "m", "version": "7"}},
    )
    for expected in (0.1, 0.25, 0.5):
        exp.promote("step", expected_treatment_weight=expected)
    assert exp.weights["treatment"] == pytest.approx(1.0) and moved == ["7"]
    again = exp.promote("retried request", expected_treatment_weight=1.0)
    assert again["action"] == "already_promoted" and moved == ["7"]
    assert [e["action"] for e in exp.store.decision_log()].count("alias_moved") == 1


def test_a_breached_guardrail_refuses_promotion_unless_forced(tmp_path: Path) -> None:
    exp = Experiment(
        _args(guardrails={"min_samples": 5, "max_error_rate": 0.1}), ExperimentStore(tmp_path / "exp.sqlite")
    )
    for i in range(10):
        exp.record(_rec(i, arm="treatment", error=i < 5))
    assert exp.flush(5)
    with pytest.raises(PromotionRefused) as refused:
        exp.promote("no", expected_treatment_weight=0.1)
    assert refused.value.code == "guardrail_breached" and exp.weights["treatment"] == pytest.approx(0.1)
    assert exp.promote("operator knows better", expected_treatment_weight=0.1, force=True)["split"][
        "treatment"
    ] == pytest.approx(0.25)


def test_input_errors_never_count_as_arm_errors(tmp_path: Path) -> None:
    exp = Experiment(
        _args(guardrails={"min_samples": 5, "max_error_rate": 0.1}), ExperimentStore(tmp_path / "exp.sqlite")
    )
    for i in range(20):
        exp.record(_rec(i, arm="treatment", input_error=i % 2 == 0, decision=None if i % 2 == 0 else "allow"))
    assert exp.flush(5)
    stats = exp.store.arm_stats("treatment")
    assert (
        stats["n"] == 10 and stats["input_errors"] == 10 and stats["errors"] == 0 and stats["error_rate"] == 0
    )


def test_a_redeployed_config_with_another_split_is_applied_and_logged(tmp_path: Path) -> None:
    path = tmp_path / "exp.sqlite"
    Experiment(_args(), ExperimentStore(path)).rollback("incident")  # operator rolled back: 100/0
    same = Experiment(_args(), ExperimentStore(path))  # restart / redeploy of the same config
    assert same.weights["treatment"] == 0.0  # the rollback survives
    changed = Experiment(
        _args(control={"model": "a", "weight": 0.8}, treatment={"model": "b", "weight": 0.2}),
        ExperimentStore(path),
    )
    assert changed.weights == pytest.approx({"control": 0.8, "treatment": 0.2})
    last = changed.store.decision_log()[-1]
    assert last["action"] == "config_split" and "0.9" in last["reason"] and "0.8" in last["reason"]
