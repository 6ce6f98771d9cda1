"""What the experiment page stands on, without Ray: intervals, the test's history, the guarded
split changes, the ramp position, and the page document itself (self-contained, CSP-pinned)."""

from __future__ import annotations

import base64
import hashlib
import math
import re
import threading
from pathlib import Path

import pytest
from scipy.stats import norm

from monovec.serving.config import ClassifierAppArgs
from monovec.serving.experiment import Experiment, ramp_position
from monovec.serving.page import drift_flags, render_page
from monovec.serving.state import ExperimentStore, RequestRecord, SplitConflict
from monovec.serving.stats import (
    ArmCounts,
    ExperimentDecisionConfig,
    rate_intervals,
    sequential_look,
    wilson_interval,
)


def _wilson_by_hand(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    z = norm.ppf(0.5 + conf / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n"), [(8, 10), (0, 30), (30, 30), (137, 200), (1, 1)])
def test_wilson_interval_matches_the_formula(k: int, n: int) -> None:
    lo, hi = wilson_interval(k, n)
    assert (lo, hi) == pytest.approx(_wilson_by_hand(k, n), abs=1e-12)
    assert 0.0 <= lo <= k / n <= hi <= 1.0
    assert hi - lo > 0  # unlike Wald, never zero width at 0 or n


def test_wilson_interval_edges_and_bad_counts() -> None:
    assert wilson_interval(0, 0) is None
    assert wilson_interval(8, 10, 0.99)[0] < wilson_interval(8, 10, 0.95)[0]
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(11, 10)
    with pytest.raises(ValueError, match="n must be"):
        wilson_interval(1, 0)


def _req(store: ExperimentStore, rid: str, arm: str, **kw) -> None:
    store.record_requests(
        [
            RequestRecord(
                rid, arm, "1", 10.0, kw.pop("decision", "allow"), "prototype", labels={"emotion": "joy"}, **kw
            )
        ]
    )


def test_rate_intervals_come_from_the_same_counts_as_the_rates(tmp_path: Path) -> None:
    store = ExperimentStore(tmp_path / "e.sqlite")
    for i in range(20):
        _req(store, f"r{i}", "control", error=i < 2, unknown=i < 5, decision="escalate" if i < 3 else "allow")
    for i in range(8):
        store.record_feedback(f"r{i}", {"emotion": "joy" if i < 6 else "sadness"}, satisfied=i < 4)
    stats = store.arm_stats("control")
    assert (stats["escalations"], stats["unknown"]) == (3, 5)
    ci = rate_intervals(stats)
    assert ci["error_rate_ci95"] == wilson_interval(2, 20)
    assert ci["escalation_rate_ci95"] == wilson_interval(3, 20)
    assert ci["unknown_rate_ci95"] == wilson_interval(5, 20)
    assert ci["accuracy_ci95"] == wilson_interval(6, 8)
    assert ci["satisfaction_ci95"] == wilson_interval(4, 8)
    empty = rate_intervals(store.arm_stats("treatment"))
    assert set(empty.values()) == {None}


def _look(n_c: int, k_c: int, n_t: int, k_t: int) -> dict:
    cfg = ExperimentDecisionConfig(min_samples_per_arm=50, max_samples_per_arm=500)
    return {**sequential_look(ArmCounts(k_c, n_c), ArmCounts(k_t, n_t), cfg), "action": "continue_experiment"}


def test_looks_are_recorded_once_per_new_data_and_thinned_keeping_the_newest(tmp_path: Path) -> None:
    cfg = ExperimentDecisionConfig(min_samples_per_arm=50, max_samples_per_arm=500)
    assert sequential_look(ArmCounts(0, 0), ArmCounts(3, 5), cfg) is None
    early = _look(10, 7, 10, 9)
    assert early["min_samples_met"] is False and early["boundary"] > 2.241
    store = ExperimentStore(tmp_path / "e.sqlite")
    assert store.record_look(early) is True
    assert store.record_look(early) is False  # same counts: the page polled again, no new point
    for n in range(11, 71):
        assert store.record_look(_look(n, n // 2, n, (3 * n) // 4))
    history = store.test_history(limit=200)
    assert len(history) == 61 and [h["n_control"] for h in history] == list(range(10, 71))
    assert history[-1]["min_samples_met"] is True and history[-1]["time"].endswith("+00:00")
    assert history[-1]["z"] == pytest.approx(_look(70, 35, 70, 52)["z"])
    thin = store.test_history(limit=20)
    assert len(thin) <= 20 and thin[-1]["id"] == history[-1]["id"]
    assert [h["id"] for h in thin] == sorted(h["id"] for h in thin)


def _args(tmp_path: Path, **kw) -> ClassifierAppArgs:
    return ClassifierAppArgs.model_validate(
        {
            "experiment": "unit",
            "control": {"model": "/nowhere/c", "weight": 0.9},
            "treatment": {"model": "/nowhere/t", "weight": 0.1},
            "ramp": [0.25, 0.5, 1.0],
            "decision": {"min_samples_per_arm": 5, "max_samples_per_arm": 50},
            "state_dir": str(tmp_path),
            **kw,
        }
    )


def test_ramp_position() -> None:
    ramp = [0.25, 0.5, 1.0]
    assert ramp_position(0.1, ramp) == {"steps": ramp, "step": 0, "next": 0.25}
    assert ramp_position(0.25, ramp) == {"steps": ramp, "step": 1, "next": 0.5}
    assert ramp_position(0.0, ramp)["next"] == 0.25
    assert ramp_position(1.0, ramp) == {"steps": ramp, "step": 3, "next": None}
    assert ramp_position(0.1, []) == {"steps": [], "step": 0, "next": 1.0}


def test_a_stale_expectation_changes_nothing(tmp_path: Path) -> None:
    exp = Experiment(_args(tmp_path), ExperimentStore(tmp_path / "e.sqlite"))
    out = exp.promote("page", expected_treatment_weight=0.1)
    assert out["split"]["treatment"] == 0.25 and out["action"] == "ramp"
    log = exp.store.decision_log()
    with pytest.raises(SplitConflict, match="treatment=0.25, the request expected treatment=0.1"):
        exp.promote("stale page", expected_treatment_weight=0.1)  # the same click again
    with pytest.raises(SplitConflict):
        exp.rollback("stale page", expected_treatment_weight=0.1)
    assert exp.store.decision_log() == log and exp.weights["treatment"] == 0.25
    assert exp.rollback("ok", expected_treatment_weight=0.25)["split"] == {"control": 1.0, "treatment": 0.0}


def test_concurrent_promotes_from_one_view_move_one_step(tmp_path: Path) -> None:
    """Eight clicks (threads) and a second router replica (another Experiment on the same file), all
    believing the treatment is at 10%: exactly one promote is applied."""
    store_path = tmp_path / "e.sqlite"
    a = Experiment(_args(tmp_path), ExperimentStore(store_path))
    b = Experiment(_args(tmp_path), ExperimentStore(store_path))
    results: list[str] = []

    def click(exp: Experiment) -> None:
        try:
            exp.promote("click", expected_treatment_weight=0.1)
            results.append("applied")
        except SplitConflict:
            results.append("refused")

    threads = [threading.Thread(target=click, args=(a if i % 2 else b,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["applied"] + ["refused"] * 7
    assert a.store.get_split() == {"control": 0.75, "treatment": 0.25}
    assert [d["action"] for d in a.store.decision_log()] == ["initial_split", "ramp"]
    # a replica with a stale cached split (no expectation given) still steps from the stored split
    assert b.promote("cli", expected_treatment_weight=0.25)["split"]["treatment"] == 0.5


def test_store_compare_and_set(tmp_path: Path) -> None:
    store = ExperimentStore(tmp_path / "e.sqlite")
    store.ensure_split({"control": 0.9, "treatment": 0.1})
    with pytest.raises(SplitConflict) as err:
        store.set_split({"control": 0.5, "treatment": 0.5}, "x", expected={"treatment": 0.2})
    assert err.value.current == {"control": 0.9, "treatment": 0.1} and err.value.expected == {
        "treatment": 0.2
    }
    assert (
        store.set_split({"control": 0.5, "treatment": 0.5}, "x", expected={"treatment": 0.1})["treatment"]
        == 0.5
    )


def test_status_carries_intervals_ramp_plan_and_history(tmp_path: Path) -> None:
    exp = Experiment(_args(tmp_path), ExperimentStore(tmp_path / "e.sqlite"))
    empty = exp.status()
    assert empty["test_history"] == [] and empty["ramp"]["next"] == 0.25
    assert empty["arms"]["control"]["accuracy_ci95"] is None
    assert empty["test_plan"]["boundary_constant"] == pytest.approx(2.2414, abs=1e-3)
    for i in range(12):
        arm = ("control", "treatment")[i % 2]
        exp.record(RequestRecord(f"r{i}", arm, "1", 5.0, "allow", "prototype", labels={"emotion": "joy"}))
    exp.flush()
    for i in range(12):
        exp.feedback(f"r{i}", {"emotion": "joy" if i % 3 else "anger"}, None)
    first = exp.status()
    assert len(first["test_history"]) == 1 and len(exp.status()["test_history"]) == 1  # no new data, no point
    point = first["test_history"][-1]
    assert point["z"] == first["test"]["z"] and point["boundary"] == first["test"]["boundary"]
    assert point["action"] == first["recommended_action"]
    control = first["arms"]["control"]
    assert control["accuracy_ci95"] == wilson_interval(control["accuracy_correct"], control["accuracy_n"])
    exp.feedback("r0", {"emotion": "joy"}, None)  # a changed judgement is new data
    assert len(exp.status()["test_history"]) == 2


def test_page_is_self_contained_and_pinned_by_its_csp() -> None:
    page = render_page("/apps/ab")
    doc, csp = page.html, page.headers["Content-Security-Policy"]
    assert '<meta name="monovec-base" content="/apps/ab">' in doc
    script = re.search(r"<script>(.*)</script>", doc, re.S).group(1)
    style = re.search(r"<style>(.*)</style>", doc, re.S).group(1)
    for body, directive in ((script, "script-src"), (style, "style-src")):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"{directive} 'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "unsafe" not in csp
    # nothing fetched from elsewhere: no external src/href/url()/@import (the SVG namespace is a name, not a fetch)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(|@import""", doc)
    assert not re.search(
        r"\.(inner|outer)HTML\s*=|insertAdjacentHTML|document\.write|eval\(|new Function", script
    )
    assert "document.cookie" not in script and "localStorage" not in script
    hostile = render_page('/x"><script>alert(1)</script>').html
    assert "<script>alert(1)" not in hostile and "&quot;&gt;&lt;script&gt;" in hostile


def test_drift_flags_keep_the_deciding_numbers() -> None:
    assert drift_flags({"available": False, "reason": "model has no reference sample"}) == {
        "available": False,
        "drift": None,
        "reason": "model has no reference sample",
    }
    report = {
        "available": True,
        "ready": True,
        "n": 80,
        "seen": 90,
        "n_reference": 200,
        "drift": True,
        "reasons": ["psi"],
        "psi": {"per_projection": [0.1, 0.3], "max": 0.3, "mean": 0.2, "threshold": 0.2, "drift": True},
        "ks": {
            "statistics": [0.1],
            "p_values": [0.5],
            "max_statistic": 0.1,
            "min_p_value": 0.5,
            "threshold": 0.003,
            "drift": False,
        },
        "mmd": {"mmd2": 0.01, "p_value": 0.4, "bandwidth": 1.0, "n_ref": 200, "n_cur": 80, "drift": False},
    }
    flags = drift_flags(report, mmd_alpha=0.05)
    assert flags["psi"] == {"max": 0.3, "threshold": 0.2, "drift": True}
    assert flags["ks"]["min_p_value"] == 0.5 and flags["mmd"] == {
        "mmd2": 0.01,
        "p_value": 0.4,
        "alpha": 0.05,
        "drift": False,
    }
    assert flags["reasons"] == ["psi"] and "per_projection" not in str(flags)
    not_ready = drift_flags(
        {
            "available": True,
            "ready": False,
            "n": 3,
            "n_reference": 200,
            "psi": None,
            "ks": None,
            "mmd": None,
            "drift": False,
            "reasons": [],
        }
    )
    assert not_ready["ready"] is False and not_ready["psi"] is None
