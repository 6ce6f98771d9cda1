"""What a rerun on a sweep's --out does (resume / refuse), and trial rows rebuilt from Tune's experiment state.

The kill-and-resume itself runs in tests/integration/test_tune.py; these pin the decisions without Ray."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from monovec.config import ConfigError
from monovec.tuning.config import load_job
from monovec.tuning.progress import finished_rows, trial_numbers
from monovec.tuning.resume import SweepRecord, check_rerun, job_fingerprint, read_record
from monovec.tuning.space import load_space
from tests.conftest import REPO

SPACE = REPO / "tune_spaces/prototype_thresholds.yaml"


def started(out: Path, **job_overrides: str) -> SweepRecord:
    job = load_job(
        str(REPO / "jobs/configs/tune_classifier.yaml"),
        [f"{k}={v}" for k, v in job_overrides.items()],
        out=str(out),
    )
    job_now, space_now = job_fingerprint(job, load_space(SPACE))
    record = SweepRecord(
        experiment="ray/x-20260101-000000", job=job_now, space=space_now, baseline_metrics={"objective": 0.5}
    )
    out.mkdir(parents=True, exist_ok=True)
    record.write(out)
    return record


def test_a_fresh_directory_starts_a_sweep_and_an_unfinished_one_is_resumed(tmp_path: Path) -> None:
    job = load_job(str(REPO / "jobs/configs/tune_classifier.yaml"), [], out=str(tmp_path / "s"))
    space = load_space(SPACE)
    assert check_rerun(tmp_path / "s", job, space) is None
    started(tmp_path / "s")
    record = check_rerun(tmp_path / "s", job, space)
    assert record is not None and record.baseline_metrics == {"objective": 0.5} and not record.finished
    # where Ray runs may change between the two drivers
    moved = load_job(
        str(REPO / "jobs/configs/tune_classifier.yaml"), [], out=str(tmp_path / "s"), address="127.0.0.1:6390"
    )
    assert check_rerun(tmp_path / "s", moved, space) is not None
    # so may the fault-injection switches (the resume test's slow driver is rerun without them)
    slowed = load_job(
        str(REPO / "jobs/configs/tune_classifier.yaml"),
        ["faults.driver_step_delay_s=0.3"],
        out=str(tmp_path / "s"),
    )
    assert check_rerun(tmp_path / "s", slowed, space) is not None


def test_the_step_delay_switch_sleeps_only_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from monovec.faults import FaultConfig
    from monovec.tuning.progress import StepDelayCallback

    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    StepDelayCallback(FaultConfig()).on_step_end(0, [])
    StepDelayCallback(FaultConfig(driver_step_delay_s=0.3)).on_step_end(1, [])
    assert slept == [0.3]
    with pytest.raises(ValueError):
        FaultConfig(driver_step_delay_s=0)


def test_a_finished_sweep_is_refused_with_the_way_to_see_it(tmp_path: Path) -> None:
    job = load_job(str(REPO / "jobs/configs/tune_classifier.yaml"), [], out=str(tmp_path / "s"))
    record = started(tmp_path / "s")
    record.finished = True
    record.write(tmp_path / "s")
    with pytest.raises(ConfigError, match="finished sweep.*monovec tune show"):
        check_rerun(tmp_path / "s", job, load_space(SPACE))
    (tmp_path / "old").mkdir()  # a sweep written before sweep.json existed
    (tmp_path / "old" / "summary.json").write_text("{}")
    with pytest.raises(ConfigError, match="finished sweep"):
        check_rerun(tmp_path / "old", job, load_space(SPACE))


def test_changed_settings_are_named_instead_of_resumed(tmp_path: Path) -> None:
    started(tmp_path / "s")
    job = load_job(
        str(REPO / "jobs/configs/tune_classifier.yaml"),
        ["objective.budget=0.1"],
        out=str(tmp_path / "s"),
        num_samples=8,
    )
    with pytest.raises(
        ConfigError,
        match=r"objective\.budget: 0\.15 when started, 0\.1 now.*search\.num_samples: 200 when started, 8 now",
    ):
        check_rerun(tmp_path / "s", job, load_space(SPACE))
    assert read_record(tmp_path / "s") is not None  # the record is untouched


def _trial(tid: str, tag: str, status: str, objective: float | None, **config: float) -> SimpleNamespace:
    result = (
        {"objective": objective, "time_total_s": 1.5, "training_iteration": 1, "done": True}
        if objective is not None
        else {}
    )
    return SimpleNamespace(trial_id=tid, experiment_tag=tag, status=status, config=config, last_result=result)


def test_rows_come_from_the_experiment_state_in_creation_order() -> None:
    # Tune requeues restored trials by last result time: the list order is not the creation order
    trials = [
        _trial("c", "3_a=0.3", "TERMINATED", 0.3, a=0.3),
        _trial("a", "1_a=0.1", "TERMINATED", 0.1, a=0.1),
        _trial("e", "10_a=1.0", "TERMINATED", 1.0, a=1.0),
        _trial("d", "4_a=0.4", "ERROR", 0.4, a=0.4),  # errored after a report: not a finished trial
        _trial("b", "2_a=0.2", "TERMINATED", None, a=0.2),  # never reported an objective
    ]
    assert trial_numbers(trials) == {
        "a": 0,
        "b": 1,
        "c": 2,
        "d": 3,
        "e": 4,
    }  # "10" after "4": numbers, not text
    rows = finished_rows(trials, ["a"])
    assert [(r["trial"], r["trial_id"], r["a"], r["objective"]) for r in rows] == [
        (0, "a", 0.1, 0.1),
        (2, "c", 0.3, 0.3),
        (4, "e", 1.0, 1.0),
    ]
    assert rows[0]["trial_seconds"] == 1.5 and "training_iteration" not in rows[0] and "done" not in rows[0]
