"""The update job's body without Ray: dead letters, the watermark, and exactly-once learning across a crash.

A run killed after K events (faults.fail_after_events) and rerun must end where an uninterrupted run ends:
same ledger (each event id once), same watermark, same weights - not merely "no duplicates"."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from monovec.faults import InjectedFault
from monovec.taste.checkpoint import JobState, job_root, latest_checkpoint
from monovec.taste.config import Taste2VecJobConfig
from monovec.taste.data import load_catalogue
from monovec.taste.simulate import SimConfig, Simulator
from monovec.taste.update import UpdateSession

BROKEN = [
    ('{"event_id": "bad-1", "item_id": "arabica-1", "liked": true}', "user_id"),
    ('{"event_id": "bad-2", "user_id": "u1", "item_id": "nope", "liked": true}', "unknown item"),
    ('{"event_id": "bad-3", "user_id": "u1", "item_id": "arabica-1", "rating": NaN}', "NaN"),
    ('{"event_id": "bad-4", "user_id": "u1", "item_id": "arabica-1"', "invalid JSON"),
]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def job_cfg(data_dir: Path, out: Path, **faults: object) -> Taste2VecJobConfig:
    return Taste2VecJobConfig.model_validate(
        {
            "out_dir": str(out),
            "catalogue": {"coffee_dir": str(data_dir / "coffee"), "max_items": 80},
            "model": {
                "dim": 16,
                "numeric_hidden": 16,
                "fusion_hidden": 32,
                "text": {"enabled": False},
                "sensory": {"dim": 8, "initial_capacity": 64, "min_count": 2},
                "users": {"dim": 17, "initial_capacity": 8},
                "items": {"dim": 2, "initial_capacity": 128},
                "context": {"hidden": 8, "history": 3},
            },
            "learn": {"window": 40, "replay": {"capacity": 200, "ratio": 1.0}},
            "update": {"checkpoint_every": 120},
            "faults": faults,
            "tracking": {"enabled": False},
            "chroma": {"enabled": False},
        }
    )


@pytest.fixture(scope="module")
def events_file(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """400 simulated events (trend words late in the stream) with broken lines and a duplicate mixed in."""
    cat = load_catalogue(data_dir / "coffee", max_items=80)
    stream = [e for e, _ in Simulator(cat, SimConfig(users=12, events=400, seed=5, trend_from=0.6)).events()]
    lines = [json.dumps(e, ensure_ascii=False) for e in stream]
    for k, (line, _) in enumerate(BROKEN):
        lines.insert(50 + 90 * k, line)
    lines.insert(300, json.dumps(stream[10]))  # a replayed client retry: same event_id
    lines.insert(200, "")
    path = tmp_path_factory.mktemp("events") / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, [e["event_id"] for e in stream]


def run(cfg: Taste2VecJobConfig, events: Path) -> UpdateSession:
    session = UpdateSession.open(cfg, job_root(cfg))
    session.run(events)
    return session


def test_bad_lines_go_to_the_dead_letter_file_and_the_rest_is_learned(
    data_dir: Path, tmp_path: Path, events_file: tuple[Path, list[str]]
) -> None:
    path, ids = events_file
    cfg = job_cfg(data_dir, tmp_path)
    session = run(cfg, path)
    state = session.state
    assert state.ledger == ids and state.learned == 400  # every good event, in order, once
    dead = [json.loads(x) for x in (job_root(cfg) / "dead_letter.jsonl").read_text().splitlines()]
    assert len(dead) == len(BROKEN) + 1 == state.dead_letters
    by_raw = {entry["raw"]: entry for entry in dead}
    for line, why in BROKEN:
        assert why in by_raw[line]["reason"] and by_raw[line]["line"] > 0
    duplicate = [e for e in dead if "duplicate" in e["reason"]]
    assert len(duplicate) == 1 and duplicate[0]["event_id"] == ids[10]
    n_lines = len(path.read_text().splitlines())
    assert state.watermark == {str(path.resolve()): n_lines}
    assert all(not np.isnan(m["prequential_auc"]) for m in state.metrics)
    assert "yuzu" in session.model.table or "유자" in session.model.table  # trend words got rows mid-stream

    again = run(cfg, path)  # nothing new: nothing learned twice, nothing re-filed
    assert again.state.learned == 400 and len(
        (job_root(cfg) / "dead_letter.jsonl").read_text().splitlines()
    ) == len(dead)


def test_a_killed_run_resumes_and_learns_each_event_exactly_once(
    data_dir: Path, tmp_path: Path, events_file: tuple[Path, list[str]]
) -> None:
    path, ids = events_file
    reference = run(job_cfg(data_dir, tmp_path / "uninterrupted"), path)

    crashing = job_cfg(data_dir, tmp_path / "killed", fail_after_events=200)
    with pytest.raises(InjectedFault):
        run(crashing, path)
    committed = JobState.read(latest_checkpoint(job_root(crashing)))  # type: ignore[arg-type]
    assert committed.learned == 120 and committed.ledger == ids[:120]  # the 80 uncommitted events rolled back
    resumed = run(job_cfg(data_dir, tmp_path / "killed"), path)

    assert resumed.state.ledger == reference.state.ledger == ids
    assert len(set(resumed.state.ledger)) == len(resumed.state.ledger)
    assert resumed.state.watermark == {str(path.resolve()): reference.state.watermark[str(path.resolve())]}
    ref_weights, got_weights = reference.model.state_dict(), resumed.model.state_dict()
    for key, value in ref_weights.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, got_weights[key]), key  # same events, same order, same updates
    dead = (job_root(crashing) / "dead_letter.jsonl").read_text().splitlines()
    assert len(dead) == len(BROKEN) + 1  # lines re-read after the crash are not filed twice


def test_new_events_appended_later_are_learned_from_the_checkpoint(
    data_dir: Path, tmp_path: Path, events_file: tuple[Path, list[str]]
) -> None:
    src, ids = events_file
    folder = tmp_path / "events"
    folder.mkdir()
    lines = src.read_text().splitlines()
    (folder / "000.jsonl").write_text("\n".join(lines[:250]) + "\n")
    cfg = job_cfg(data_dir, tmp_path)
    first = run(cfg, folder)
    ray_copy = tmp_path / "ray-checkpoint"  # what Ray Train would hand back from its storage
    shutil.copytree(latest_checkpoint(job_root(cfg)), ray_copy)  # type: ignore[arg-type]
    (folder / "001.jsonl").write_text("\n".join(lines[250:]) + "\n")  # a new file arrives
    second = run(cfg, folder)
    assert second.state.ledger == ids and second.state.learned == 400 > first.state.learned
    assert len(second.state.watermark) == 2
    # resume picks whichever checkpoint has learned more: here the job's own LATEST, not the older Ray copy
    assert UpdateSession.open(cfg, job_root(cfg), ray_copy).state.learned == 400
    shutil.rmtree(job_root(cfg))  # only Ray's copy left (e.g. a fresh node): resume from it
    assert UpdateSession.open(cfg, job_root(cfg), ray_copy).state.learned == first.state.learned
