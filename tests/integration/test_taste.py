"""Taste2Vec on the shared local Ray: the update job through Ray Train (a real worker, MLflow versions, Chroma
items, recommendation), a killed job rerun learning each event once, and `monovec taste simulate` end to end
with the real USE-m3 text encoder on a real CQI slice. Small streams: the module runs in about a minute."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monovec.taste.checkpoint import JobState, job_root, latest_checkpoint
from monovec.taste.config import Taste2VecJobConfig
from monovec.taste.data import load_catalogue
from monovec.taste.simulate import SimConfig, Simulator
from monovec.taste.update import run_update

pytestmark = pytest.mark.integration

BROKEN = [
    '{"event_id": "x1", "item_id": "arabica-1", "liked": true}',
    '{"event_id": "x2", "user_id": "u1", "item_id": "no-such-lot", "liked": false}',
    '{"event_id": "x3", "user_id": "u1", "item_id": "arabica-1", "rating": NaN}',
]


def cfg_for(data_dir: Path, out: Path, **overrides: object) -> Taste2VecJobConfig:
    base = {
        "out_dir": str(out),
        "catalogue": {"coffee_dir": str(data_dir / "coffee"), "max_items": 120},
        "model": {"text": {"enabled": False}, "sensory": {"initial_capacity": 64}},
        "learn": {"window": 50, "replay": {"capacity": 500}},
        "update": {"checkpoint_every": 100, "register_every": 200},
        "chroma": {"path": str(out / "chroma")},
    }
    for key, value in overrides.items():
        base[key] = {**base.get(key, {}), **value}  # type: ignore[dict-item]
    return Taste2VecJobConfig.model_validate(base)


def write_events(
    data_dir: Path, path: Path, n: int, seed: int, broken: bool = True, prefix: str = ""
) -> list[str]:
    cat = load_catalogue(data_dir / "coffee", max_items=120)
    stream = [e for e, _ in Simulator(cat, SimConfig(users=15, events=n, seed=seed, trend_from=0.5)).events()]
    for e in stream:
        e["event_id"] = prefix + e["event_id"]
    lines = [json.dumps(e, ensure_ascii=False) for e in stream]
    if broken:
        for k, line in enumerate(BROKEN):
            lines.insert(40 + 100 * k, line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [e["event_id"] for e in stream]


def test_update_job_on_ray_train_registers_versions_and_recommends(
    ray_session: None, data_dir: Path, tmp_path: Path
) -> None:
    from monovec.taste.recommend import recommend
    from monovec.tracking.mlflow_store import mlflow_client

    folder = tmp_path / "events"
    folder.mkdir()
    ids = write_events(data_dir, folder / "000.jsonl", 400, seed=1)
    # a real Ray Train worker actor (~20 s of the test is its start-up); MLflow + Chroma in the second run
    cfg = cfg_for(
        data_dir, tmp_path, scaling={"num_workers": 1}, tracking={"enabled": False}, chroma={"enabled": False}
    )
    summary = run_update(cfg, folder)
    assert summary["learned"] == 400 and summary["dead_letters"] == len(BROKEN) and summary["versions"] == []
    root = Path(summary["root"])
    assert sorted((root / "ray" / cfg.run_name).glob("checkpoint_*")), "Ray Train persisted no checkpoint"
    dead = [json.loads(x) for x in (root / "dead_letter.jsonl").read_text().splitlines()]
    assert {d["raw"] for d in dead} == set(BROKEN) and all(d["reason"] for d in dead)
    state = JobState.read(latest_checkpoint(root))  # type: ignore[arg-type]
    assert state.ledger == ids and state.metrics[-1]["prequential_auc"] > 0.55

    more = write_events(
        data_dir, folder / "001.jsonl", 200, seed=2, broken=False, prefix="day2-"
    )  # a new file
    cfg = cfg_for(data_dir, tmp_path, scaling={"num_workers": 0})  # in-process this time; Chroma on
    again = run_update(cfg, folder)  # resumes from the checkpoint and learns only the new file
    state = JobState.read(latest_checkpoint(root))  # type: ignore[arg-type]
    assert again["learned"] == 600 and state.ledger == ids + more and len(set(state.ledger)) == 600
    assert [v["events_learned"] for v in again["versions"]] == [
        500,
        600,
    ]  # every 200 events: 400 -> 500 -> 600
    _, client, _ = mlflow_client(None)
    versions = client.search_model_versions("name = 'monovec-taste2vec'")
    assert sorted(v.tags["events_learned"] for v in versions)[-2:] == ["500", "600"]

    result = recommend(cfg, "u0001", k=5, context={"hour": 8, "weather": "sunny"})
    assert result["known_user"] and len(result["items"]) == 5 and result["index_events_learned"] == 600
    assert len({i["item_id"] for i in result["items"]}) == 5 and all(
        i["item_id"].startswith(("arabica-", "robusta-")) for i in result["items"]
    )
    cold = recommend(cfg, "someone-new", k=3)
    assert not cold["known_user"] and len(cold["items"]) == 3


def test_killed_job_rerun_learns_each_event_exactly_once(
    ray_session: None, data_dir: Path, tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    ids = write_events(data_dir, events, 300, seed=3)
    crashing = cfg_for(
        data_dir,
        tmp_path,
        faults={"fail_after_events": 150},
        tracking={"enabled": False},
        chroma={"enabled": False},
    )
    with pytest.raises(Exception, match="injected fault"):
        run_update(crashing, events)
    committed = JobState.read(latest_checkpoint(job_root(crashing)))  # type: ignore[arg-type]
    assert committed.learned == 100 and committed.ledger == ids[:100]
    fixed = cfg_for(data_dir, tmp_path, tracking={"enabled": False}, chroma={"enabled": False})
    summary = run_update(fixed, events)
    state = JobState.read(latest_checkpoint(job_root(fixed)))  # type: ignore[arg-type]
    assert summary["learned"] == 300 and state.ledger == ids and len(set(state.ledger)) == 300
    assert len((job_root(fixed) / "dead_letter.jsonl").read_text().splitlines()) == len(BROKEN)


def test_simulate_cli_end_to_end_with_the_real_text_encoder(data_dir: Path, tmp_path: Path) -> None:
    from monovec.cli.main import app

    out = tmp_path / "sim"
    result = CliRunner().invoke(
        app,
        [
            "taste",
            "simulate",
            "--users",
            "30",
            "--events",
            "2000",
            "--seed",
            "1",
            "--out",
            str(out),
            "--malformed-rate",
            "0.02",
            f"catalogue.coffee_dir={data_dir / 'coffee'}",
            "catalogue.max_items=150",
            "model.text.encoder.threads=1",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    for key in ("final_auc", "frozen_auc", "hit_rate_at_10", "popularity_hit_rate_at_10"):
        assert 0.0 <= summary[key] <= 1.0
    curves = json.loads((out / "curves.json").read_text())
    assert summary["final_auc"] > 0.65 and summary["final_auc"] > curves[0]["online"]["auc"]  # it learned
    assert (
        summary["dead_letters"] > 0
        and (out / "dead_letter.jsonl").is_file()
        and (out / "prequential.png").stat().st_size > 10_000
    )
    assert summary["learned_events"] + summary["dead_letters"] == 2000
