"""Experiment state in sqlite: durable counts, feedback accuracy, split log, concurrent writers."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from monovec.serving.state import ExperimentStore, RequestRecord


def _req(store: ExperimentStore, rid: str, arm: str = "control", **kw) -> bool:
    args = {
        "model_version": "1",
        "latency_ms": 10.0,
        "decision": "allow",
        "stage": "prototype",
        "labels": {"emotion": "joy", "ethics": "clean"},
        **kw,
    }
    return store.record_requests([RequestRecord(request_id=rid, arm=arm, **args)]) == 1


def test_counts_split_and_log_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "exp.sqlite"
    store = ExperimentStore(path)
    assert store.get_split() is None
    assert store.ensure_split({"control": 90, "treatment": 10}) == {"control": 0.9, "treatment": 0.1}
    for i in range(5):
        _req(store, f"c{i}")
    _req(store, "t0", arm="treatment", error=True, decision=None)
    store.set_split({"control": 1, "treatment": 0}, reason="guardrail error_rate", action="rollback")
    del store

    again = ExperimentStore(path)
    assert again.get_split() == {"control": 1.0, "treatment": 0.0}
    # a restart with the config's split must not undo the rollback
    assert again.ensure_split({"control": 90, "treatment": 10}) == {"control": 1.0, "treatment": 0.0}
    assert again.arm_stats("control")["n"] == 5
    t = again.arm_stats("treatment")
    assert t["n"] == 1 and t["errors"] == 1 and t["error_rate"] == 1.0 and t["decisions"] == {"none": 1}
    log = again.decision_log()
    assert [e["action"] for e in log] == ["initial_split", "rollback"]
    assert log[1]["reason"] == "guardrail error_rate" and log[1]["time"].endswith("+00:00")
    assert again.decision_log(limit=1)[0]["action"] == "rollback"
    assert again.all_arms() == ["control", "treatment"]


def test_feedback_on_unknown_request_raises_key_error(tmp_path: Path) -> None:
    store = ExperimentStore(tmp_path / "exp.sqlite")
    with pytest.raises(KeyError, match="unknown request_id 'nope'"):
        store.record_feedback("nope", {"emotion": "joy"}, True)
    _req(store, "r1")
    with pytest.raises(ValueError, match="correct"):
        store.record_feedback("r1")


def test_accuracy_and_satisfaction(tmp_path: Path) -> None:
    store = ExperimentStore(tmp_path / "exp.sqlite")
    for i in range(4):
        _req(store, f"r{i}")
    out = store.record_feedback("r0", {"emotion": "joy", "ethics": "hate"}, satisfied=True)
    assert out["heads"] == {"emotion": True, "ethics": False} and out["arm"] == "control"
    store.record_feedback("r1", {"emotion": "joy", "topic": "x"}, satisfied=False)  # topic: not served
    store.record_feedback("r2", satisfied=True)
    # repeated feedback updates instead of double counting; None keeps the old answer
    store.record_feedback("r2", {"emotion": "sad"})
    s = store.arm_stats("control")
    assert s["feedback_n"] == 3
    assert (s["accuracy_correct"], s["accuracy_n"]) == (2, 4) and s["accuracy"] == 0.5
    assert s["accuracy_per_head"]["emotion"] == {"n": 3, "correct": 2, "accuracy": 2 / 3}
    assert s["accuracy_per_head"]["ethics"]["accuracy"] == 0.0
    assert (s["satisfied"], s["satisfaction_n"]) == (2, 3) and s["satisfaction"] == pytest.approx(2 / 3)
    empty = store.arm_stats("treatment")
    assert empty["n"] == 0 and empty["accuracy"] is None and empty["satisfaction"] is None
    assert empty["latency_p95_ms"] == 0.0 and empty["error_rate"] == 0.0


def test_rates_latency_window_and_versions(tmp_path: Path) -> None:
    store = ExperimentStore(tmp_path / "exp.sqlite", latency_window=100)
    rows = [
        RequestRecord(
            request_id=f"r{i}",
            arm="treatment",
            model_version="2" if i < 150 else "3",
            latency_ms=1000.0 if i < 100 else float(i),
            decision="escalate" if i % 4 == 0 else "allow",
            stage="llm" if i % 4 == 0 else "rules",
            unknown=i % 5 == 0,
            low_confidence=i % 10 == 0,
        )
        for i in range(200)
    ]
    assert store.record_requests(rows) == 200
    assert store.record_requests(rows[:10]) == 0  # retried writes are ignored
    s = store.arm_stats("treatment")
    assert s["n"] == 200 and s["escalation_rate"] == 0.25
    assert s["unknown_rate"] == 0.2 and s["low_confidence_rate"] == 0.1
    assert s["decision_mix"] == {"allow": 0.75, "escalate": 0.25}
    assert s["latency_window"] == 100 and s["latency_p99_ms"] < 1000  # only the newest 100
    assert s["model_versions"] == {"2": 150, "3": 50}
    assert store.arm_stats("treatment", model_version="3")["n"] == 50
    with pytest.raises(ValueError, match="latency_ms"):
        _req(store, "bad", latency_ms=float("nan"))


def test_concurrent_thread_writes_lose_nothing(tmp_path: Path) -> None:
    store = ExperimentStore(tmp_path / "exp.sqlite")

    def worker(k: int) -> None:
        for i in range(25):
            _req(store, f"t{k}-{i}", arm="control" if k % 2 else "treatment")
        store.record_requests(
            [RequestRecord(f"b{k}-{i}", "control", "1", 5.0, "allow", "rules") for i in range(50)]
        )

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = store.arm_stats("control")["n"] + store.arm_stats("treatment")["n"]
    assert total == 6 * 75


_WRITER = """
import sys
from monovec.serving.state import ExperimentStore, RequestRecord
store = ExperimentStore(sys.argv[1])
for i in range(20):
    store.record_requests([RequestRecord(f"p{sys.argv[2]}-{i}", "control", "1", 3.0, "allow", "rules")])
"""


def test_concurrent_process_writes_lose_nothing(tmp_path: Path) -> None:
    # fresh interpreters rather than fork: the full test run may already hold Ray's threads
    path = str(tmp_path / "exp.sqlite")
    ExperimentStore(path)
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, path, str(k)]) for k in range(3)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    assert ExperimentStore(path).arm_stats("control")["n"] == 60
