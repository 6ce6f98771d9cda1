"""The rollout story end to end, over HTTP, with two registered MLflow versions.

1. A deliberately degraded treatment (thresholds that escalate nearly everything) is rolled back
   automatically by its escalation-rate guardrail; the MLflow champion alias does not move.
2. A better treatment, judged by simulated user feedback, is promoted by `evaluate`, and the
   champion alias moves to its registry version.
3. The same story with a real treatment: the classifier built on a fine-tuned shared encoder (by reference,
   pinned) against the frozen build, judged by feedback taken from real dev labels.
"""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.e2e
PORT = 8443
URL = f"http://127.0.0.1:{PORT}"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
EMOTIONS = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]


@pytest.fixture(scope="module")
def registry(ray_session: None, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Register the tiny real model twice (v1 = champion, v2 = candidate) in the default store."""
    import mlflow

    from monovec.classify.build import BuildConfig
    from monovec.config import load_config
    from monovec.infra import TrackingConfig
    from monovec.tracking.mlflow_store import get_alias, log_and_register, tracking_uri
    from tests.conftest import REPO

    cfg = load_config(BuildConfig, REPO / "jobs/configs/classifier.yaml")
    name = "e2e-classifier"
    for _ in range(2):
        log_and_register(
            tiny_model_dir, cfg, {"dummy": 1.0}, TrackingConfig(experiment="e2e", registered_model=name)
        )
    assert get_alias(name, "champion") == "1"
    mlflow.set_tracking_uri(tracking_uri())
    return name


@pytest.fixture(scope="module")
def serve_http(registry: str):
    from ray import serve

    serve.start(http_options={"host": "127.0.0.1", "port": PORT})
    with httpx.Client(base_url=URL, timeout=30) as client:
        yield client
    serve.shutdown()


def _deploy(name: str, args: dict) -> None:
    from ray import serve

    from monovec.serving.app import build_app

    serve.run(build_app(args), name=name, route_prefix=f"/{name}")


def test_degraded_treatment_is_rolled_back_by_its_guardrail(
    serve_http: httpx.Client, registry: str, monovec_home: Path
) -> None:
    from monovec.tracking.mlflow_store import get_alias

    _deploy(
        "degraded",
        {
            "experiment": "e2e-degraded",
            "control": {"model": f"models:/{registry}/1", "weight": 0.5, "num_cpus": 0.25},
            "treatment": {
                "model": f"models:/{registry}/2",
                "weight": 0.5,
                "num_cpus": 0.25,
                "overrides": {
                    "heads.emotion.linear.threshold": 1.0,
                    "heads.emotion.escalate_uncertain": True,
                },
            },
            "guardrails": {"min_samples": 60, "max_escalation_rate": 0.15},
            "guardrail_check_every": 20,
            "state_dir": str(monovec_home / "e2e-degraded"),
        },
    )
    for i in range(120):
        r = serve_http.post(
            "/degraded/v1/classify",
            json={"text": f"what a day number {i}", "user_id": f"u{i}"},
            headers={"X-Monovec-Arm": "treatment", "Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert r.status_code == 200, r.text
    exp = serve_http.get("/degraded/v1/experiment").json()
    assert exp["split"]["treatment"] == 0.0, exp["split"]
    assert exp["arms"]["treatment"]["escalation_rate"] > 0.9
    rollbacks = [d for d in exp["decision_log"] if d["action"] == "rollback"]
    assert rollbacks and "escalation_rate" in rollbacks[-1]["reason"]
    assert get_alias(registry, "champion") == "1"  # rollback never touches the alias
    # traffic keeps flowing, all of it to control now
    arms = {
        serve_http.post("/degraded/v1/classify", json={"text": "hello", "user_id": f"x{i}"}).json()["arm"]
        for i in range(30)
    }
    assert arms == {"control"}
    from ray import serve

    serve.delete("degraded")  # free its replicas' CPUs for the next experiment


def test_better_treatment_is_promoted_and_the_alias_moves(
    serve_http: httpx.Client, registry: str, monovec_home: Path
) -> None:
    from monovec.tracking.mlflow_store import get_alias

    _deploy(
        "better",
        {
            "experiment": "e2e-better",
            "control": {"model": f"models:/{registry}/1", "weight": 0.5, "num_cpus": 0.25},
            "treatment": {"model": f"models:/{registry}/2", "weight": 0.5, "num_cpus": 0.25},
            "guardrails": {"min_samples": 100000},
            "decision": {"min_samples_per_arm": 150, "max_samples_per_arm": 400, "min_relative_lift": 0.05},
            "state_dir": str(monovec_home / "e2e-better"),
        },
    )
    rng = random.Random(0)
    quality = {"control": 0.6, "treatment": 0.95}  # simulated users: how often the served emotion is right
    for i in range(400):
        res = serve_http.post(
            "/better/v1/classify", json={"text": f"message {i}", "user_id": f"user-{i}"}
        ).json()
        served = res["heads"]["emotion"]["label"]
        truth = (
            served if rng.random() < quality[res["arm"]] else rng.choice([e for e in EMOTIONS if e != served])
        )
        assert (
            serve_http.post(
                "/better/v1/feedback", json={"request_id": res["request_id"], "correct": {"emotion": truth}}
            ).status_code
            == 200
        )
    status = serve_http.get("/better/v1/experiment").json()
    assert status["recommended_action"] == "promote_to_production", status["reason"]
    out = serve_http.post("/better/v1/experiment/evaluate", headers=AUTH).json()
    assert out["action"] == "promote_to_production" and out["split"]["treatment"] == 1.0
    assert out["champion"] == {"name": registry, "alias": "champion", "version": "2"}
    assert get_alias(registry, "champion") == "2"


# ------------------------------------------------------------------ fine-tuned shared encoder vs frozen
FT_NAME = "e2e-ab-encoder-classifier"
# CI-sized fine-tuning (jobs/configs/encoder_finetune.yaml on a slice): the K-MHaS task only, because the ethics
# head is where a two-minute fine-tune already moves accuracy (3,000 training rows: 0.549 -> 0.634 on the first
# 900 K-MHaS dev rows with the tiny builds). 1,500 rows were measured at 0.47 -> 0.61 when this test was written,
# but on a later machine the same seeded run came out 0.549 -> 0.571 (its CPU computes it differently), too
# close for the sequential test; 6,000 rows gave +0.07 in three times the time. On GoEmotions the same budget
# moves accuracy by ~0.02, which no sequential test could separate in a few hundred requests (the full run moves
# it by ~0.11: docs/encoder.md). Every group at the full learning rate (`train.group_lr_scale={}`): the shipped
# quarter rate of pool and dan is measured on full runs; on a slice it leaves the lift (+7 % on 1,500 rows) short
# of what the sequential test can separate. No geometry anchors either (`loss.geometry_anchor_task=null`): like
# the quarter rate they hold the vector near the frozen one, which the full runs measure, and this slice is here
# to move it
FT_OVERRIDES = ["tasks.emotion.enabled=false", "train.group_lr_scale={}", "loss.geometry_anchor_task=null", "tasks.davidson.enabled=false", "tasks.safety.enabled=false", "objective_task=kmhas",
                "tasks.kmhas.train.0.max_rows=3000", "tasks.kmhas.max_dev_rows=64", "train.epochs=2", "train.lr=0.002",
                "train.warmup_steps=10", "train.geometry_sample=64", "encoder.max_tokens=64", "scaling.num_workers=0"]  # fmt: skip


@pytest.fixture(scope="module")
def finetuned_pair(ray_session: None, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """control = the tiny frozen build (v1, champion); treatment = the same tiny build on an encoder fine-tuned
    here and referenced as models:/e2e-encoder@newest, which the build pins (v2)."""
    from monovec.classify.build import BuildConfig, build_classifier
    from monovec.config import load_config
    from monovec.finetune.config import FinetuneConfig
    from monovec.finetune.train import run_finetune
    from monovec.infra import TrackingConfig
    from monovec.tracking.mlflow_store import get_alias, log_and_register
    from tests.conftest import REPO, tiny_build_overrides

    root = tmp_path_factory.mktemp("ab_encoder")
    cache = tiny_model_dir.parents[1] / "cache"
    ft = load_config(FinetuneConfig, REPO / "jobs/configs/encoder_finetune.yaml",
                     [*FT_OVERRIDES, f"out_dir={root / 'ft'}", f"cache_dir={cache}", "tracking.registered_model=e2e-encoder"])  # fmt: skip
    assert run_finetune(ft, progress=lambda _m: None).registered is not None
    overrides = [
        *tiny_build_overrides(root / "models"),
        "classifier.encoder.name=models:/e2e-encoder@newest",
        "evaluate=false",
    ]
    treatment = build_classifier(
        load_config(BuildConfig, REPO / "jobs/configs/classifier_finetuned.yaml", overrides),
        progress=lambda _m: None,
    )
    assert (
        treatment.model_dir.joinpath("model.json").read_text().count("models:/e2e-encoder/1") == 1
    )  # pinned, not the alias
    cfg = load_config(BuildConfig, REPO / "jobs/configs/classifier.yaml")
    track = TrackingConfig(experiment="e2e", registered_model=FT_NAME)
    log_and_register(tiny_model_dir, cfg, {"dummy": 1.0}, track)
    log_and_register(treatment.model_dir, cfg, {"dummy": 1.0}, track)
    assert get_alias(FT_NAME, "champion") == "1"
    return FT_NAME


def test_finetuned_encoder_build_is_promoted_over_the_frozen_build(serve_http: httpx.Client, finetuned_pair: str, data_dir: Path,
                                                                    monovec_home: Path) -> None:  # fmt: skip
    """Simulated users send real K-MHaS dev comments and report their true class for the ethics head; the
    sequential test finds the fine-tuned build better and `evaluate` promotes it: the champion alias moves."""
    import json

    from monovec.tracking.mlflow_store import get_alias

    _deploy("encoder-ab", {
        "experiment": "e2e-encoder-ab",
        "control": {"model": f"models:/{finetuned_pair}/1", "weight": 0.5, "num_cpus": 0.25},
        "treatment": {"model": f"models:/{finetuned_pair}/2", "weight": 0.5, "num_cpus": 0.25},
        "guardrails": {"min_samples": 100000},
        "decision": {"min_samples_per_arm": 100, "max_samples_per_arm": 300, "min_relative_lift": 0.05},
        "state_dir": str(monovec_home / "e2e-encoder-ab"),
    })  # fmt: skip
    health = serve_http.get(
        "/encoder-ab/healthz"
    ).json()  # the treatment replica resolved its pinned encoder to load
    assert (
        health["status"] == "ok" and health["models"]["treatment"]["model"] == f"models:/{finetuned_pair}/2"
    )
    rows = [
        json.loads(line)
        for line in (data_dir / "kmhas" / "dev.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    status: dict = {}
    for i, row in enumerate(rows[:900]):
        res = serve_http.post(
            "/encoder-ab/v1/classify", json={"text": row["text"], "user_id": f"reader-{i}"}
        ).json()
        fb = serve_http.post(
            "/encoder-ab/v1/feedback",
            json={"request_id": res["request_id"], "correct": {"ethics": row["labels"][0]}},
        )
        assert fb.status_code == 200
        if i % 50 == 49:
            status = serve_http.get("/encoder-ab/v1/experiment").json()
            if status["recommended_action"] != "continue_experiment":
                break
    assert status["recommended_action"] == "promote_to_production", status["reason"]
    assert status["arms"]["treatment"]["accuracy"] > status["arms"]["control"]["accuracy"] + 0.05
    out = serve_http.post("/encoder-ab/v1/experiment/evaluate", headers=AUTH).json()
    assert out["action"] == "promote_to_production" and out["champion"] == {
        "name": finetuned_pair,
        "alias": "champion",
        "version": "2",
    }
    assert get_alias(finetuned_pair, "champion") == "2"
    from ray import serve

    serve.delete("encoder-ab")
