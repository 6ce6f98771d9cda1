"""The `classifier` Serve app over real HTTP on 127.0.0.1: API contract, A/B, bad input, faults.

Serve starts once for the module; the two arms are the same tiny real model, the treatment with
different thresholds (a legitimate "threshold change" experiment).
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import json
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN as ADMIN

BEARER = {
    "Authorization": f"Bearer {ADMIN}"
}  # forcing an arm (X-Monovec-Arm) is a QA act: it needs the token

pytestmark = pytest.mark.integration
PORT = 8431
URL = f"http://127.0.0.1:{PORT}"


@pytest.fixture(scope="module")
def app(ray_session: None, tiny_model_dir: Path, monovec_home: Path):
    from ray import serve

    from monovec.serving.app import build_app

    args = {
        "experiment": "it-ab",
        "control": {"model": str(tiny_model_dir), "weight": 0.9, "num_cpus": 0.5, "num_replicas": 2},
        "treatment": {
            "model": str(tiny_model_dir),
            "weight": 0.1,
            "num_cpus": 0.5,
            "overrides": {"heads.emotion.linear.threshold": 0.3},
        },
        "guardrails": {"min_samples": 100000},  # this module tests plumbing; rollback has its own e2e test
        "state_dir": str(monovec_home / "serve-it"),
    }
    serve.start(http_options={"host": "127.0.0.1", "port": PORT})
    serve.run(build_app(args), name="classifier", route_prefix="/")
    with httpx.Client(base_url=URL, timeout=30) as client:
        yield client
    serve.delete("classifier")
    serve.shutdown()


def test_healthz_and_contract(app: httpx.Client) -> None:
    h = app.get("/healthz").json()
    assert h["status"] == "ok" and set(h["models"]) == {"control", "treatment"}, h
    r = app.post("/v1/classify", json={"text": "I am so happy for you!", "user_id": "u1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert {
        "request_id",
        "arm",
        "model_version",
        "decision",
        "stage",
        "reason",
        "heads",
        "latency_ms",
    } <= set(body)
    assert body["arm"] in ("control", "treatment")
    assert body["heads"]["emotion"]["status"] in ("confident", "ambiguous", "low_confidence", "unknown")
    batch = app.post("/v1/classify/batch", json={"texts": ["good", "오늘 기분 최고"], "user_id": "u1"}).json()
    assert len(batch["results"]) == 2 and all(x["arm"] == body["arm"] for x in batch["results"])


def test_every_replica_listens_on_loopback_only(app: httpx.Client) -> None:
    """Serve's inter-deployment gRPC server binds `[::]:0` unless the deployments rebind it
    (monovec.ray_env.bind_replica_grpc_to_node_ip); the router -> arm calls above prove it is still reached."""
    import psutil

    replicas = {}
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.pid:
            try:
                name = " ".join(psutil.Process(conn.pid).cmdline())
            except psutil.Error:
                continue
            if "ServeReplica:classifier:" in name:
                replicas[(conn.laddr.ip, conn.laddr.port)] = (conn.pid, name.strip())
    assert len({pid for pid, _ in replicas.values()}) >= 4, replicas  # router + 2 control + 1 treatment
    assert all(ip in ("127.0.0.1", "::ffff:127.0.0.1") for ip, _ in replicas), replicas
    assert app.post("/v1/classify", json={"text": "still answered", "user_id": "u9"}).status_code == 200


def test_arm_serves_handle_callers_through_its_batch_and_the_router_in_micro_batches(
    app: httpx.Client,
) -> None:
    """Other deployments may call an arm per text (its @serve.batch); the router sends it groups."""
    from ray import serve

    arm = serve.get_deployment_handle("arm_control", app_name="classifier")
    one = arm.classify.remote("what a lovely day", None, "rid-1").result(timeout_s=30)
    assert one["request_id"] == "rid-1" and "embedding" not in one and one["heads"]["emotion"]["label"]
    many = arm.classify_many.remote(["good", "bad", "최고"], ["s1", None, None], ["a", "b", "c"]).result(
        timeout_s=30
    )
    assert [r["request_id"] for r in many] == ["a", "b", "c"]
    with cf.ThreadPoolExecutor(8) as pool:  # concurrent single requests through the router all answer
        texts = [f"I feel great number {i}" for i in range(24)]
        got = list(
            pool.map(lambda t: app.post("/v1/classify", json={"text": t, "user_id": "u-batch"}).json(), texts)
        )
    assert all(g["arm"] == got[0]["arm"] and "heads" in g for g in got)
    assert len({g["request_id"] for g in got}) == 24


def test_sticky_assignment_and_header_override(app: httpx.Client) -> None:
    arms = {
        app.post("/v1/classify", json={"text": "hello", "user_id": "sticky-user"}).json()["arm"]
        for _ in range(20)
    }
    assert len(arms) == 1
    forced = app.post(
        "/v1/classify",
        json={"text": "hello", "user_id": "sticky-user"},
        headers={"X-Monovec-Arm": "treatment", **BEARER},
    ).json()
    assert forced["arm"] == "treatment"
    seen = {
        app.post("/v1/classify", json={"text": "hi", "user_id": f"user-{i}"}).json()["arm"] for i in range(60)
    }
    assert seen == {"control", "treatment"}


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"json": {"text": ""}}, 400, "empty_text"),
        ({"json": {"text": "   "}}, 400, "empty_text"),
        ({"json": {"text": "x" * 1_000_000}}, 413, "text_too_long"),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "malformed_json"),
        ({"json": {"text": 5}}, 422, "invalid_type"),
        ({"json": {"texts": "nope"}}, 422, "invalid_request"),
        ({"json": {"text": "hi", "user_id": 3}}, 422, "invalid_request"),
        ({"json": ["a list"]}, 400, "invalid_request"),
        ({"content": b'{"text": "caf\xe9"}'}, 400, "invalid_utf8"),
        ({"content": b"[" * 5000 + b"]" * 5000}, 400, "too_deep"),
        (
            {"content": b'{"text": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}}}'},
            400,
            "too_deep",
        ),
        ({"content": b'{"text": "a\\ud800b"}'}, 400, "invalid_text"),
        ({"content": b""}, 400, "empty_body"),
        ({"content": b"x" * (5 * 1024 * 1024)}, 413, "body_too_large"),
        ({"json": {"text": "hi"}, "headers": {"X-Padding": "p" * 20_000}}, 431, "headers_too_large"),
    ],
)
def test_bad_input_is_4xx_json(app: httpx.Client, kwargs: dict, status: int, code: str) -> None:
    r = app.post("/v1/classify", **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert app.get("/healthz").status_code == 200  # still serving


def test_json_without_a_content_type_is_read_and_unknown_routes_answer_in_shape(app: httpx.Client) -> None:
    r = app.post(
        "/v1/classify",
        content=b'{"text": "good morning"}',
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text  # curl -d sends this content type: the body is still JSON
    r = app.get("/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_batch_answers_per_item_and_records_item_errors(app: httpx.Client) -> None:
    before = app.get("/v1/experiment").json()["arms"]["treatment"]
    texts = ["good morning", "", 7, "x" * 30_000, "a\ud800b", "오늘 기분 최고"]
    body = json.dumps({"texts": texts}).encode()  # ensure_ascii: the lone surrogate travels as \\ud800
    r = app.post("/v1/classify/batch", content=body, headers={"X-Monovec-Arm": "treatment", **BEARER})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == len(texts)
    assert "heads" in results[0] and "heads" in results[5]
    assert [results[i]["error"]["code"] for i in (1, 2, 3, 4)] == [
        "empty_text",
        "invalid_type",
        "text_too_long",
        "invalid_text",
    ]
    assert [results[i]["index"] for i in (1, 2, 3, 4)] == [1, 2, 3, 4]
    after = app.get("/v1/experiment").json()["arms"]["treatment"]
    assert after["n"] == before["n"] + 2 and after["input_errors"] == before["input_errors"] + 4
    assert after["errors"] == before["errors"]  # the client's mistakes are not arm failures


def test_oversize_batch_and_unknown_feedback(app: httpx.Client) -> None:
    r = app.post("/v1/classify/batch", json={"texts": ["x"] * 10_000})
    assert r.status_code == 413 and r.json()["error"]["code"] == "batch_too_large"
    r = app.post("/v1/feedback", json={"request_id": "no-such-id", "satisfied": True})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_request_id"
    r = app.post("/v1/classify", json={"text": "hi"}, headers={"X-Monovec-Arm": "bogus", **BEARER})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_arm"


def test_feedback_reaches_the_experiment(app: httpx.Client) -> None:
    res = app.post("/v1/classify", json={"text": "I love it", "user_id": "fb-user"}).json()
    label = res["heads"]["emotion"]["label"]
    assert app.post(
        "/v1/feedback",
        json={"request_id": res["request_id"], "correct": {"emotion": label}, "satisfied": True},
    ).json() == {"ok": True}
    exp = app.get("/v1/experiment").json()
    arm = exp["arms"][res["arm"]]
    assert arm["feedback_n"] >= 1 and arm["accuracy"] is not None
    assert exp["recommended_action"] in ("continue_experiment", "promote_to_production", "rollback")
    assert {"split", "test", "decision_log", "drift"} <= set(exp)
    assert set(app.get("/v1/monitor").json()) == {"control", "treatment"}


def test_admin_needs_the_token(app: httpx.Client) -> None:
    assert app.post("/v1/experiment/evaluate").status_code == 401
    assert app.post("/v1/experiment/evaluate", headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = app.post("/v1/experiment/evaluate", headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 200 and r.json()["action"] == "continue_experiment"


def test_arm_replica_killed_under_load(app: httpx.Client) -> None:
    """1,000 requests from 8 clients; one control replica is killed mid-load: <= 1% may fail."""
    import ray
    from ray import serve

    before = app.get("/v1/experiment").json()["arms"]["control"]["n"]
    victims = [
        a
        for a in ray.util.list_named_actors(all_namespaces=True)
        if "arm_control" in a["name"] and "SERVE_REPLICA" in a["name"]
    ]
    assert len(victims) == 2

    def one(i: int) -> int:
        try:
            return httpx.post(
                f"{URL}/v1/classify",
                json={"text": f"message {i}", "user_id": f"load-{i % 50}"},
                headers={"X-Monovec-Arm": "control", **BEARER},
                timeout=30,
            ).status_code
        except httpx.HTTPError:
            return 599

    with cf.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(one, i) for i in range(1000)]
        time.sleep(1.0)
        ray.kill(ray.get_actor(victims[0]["name"], namespace=victims[0]["namespace"]), no_restart=True)
        codes = [f.result() for f in futures]
    failed = sum(c != 200 for c in codes)
    assert failed <= 10, f"{failed} of 1000 failed, by status: {collections.Counter(codes)}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the replica comes back
        status = serve.status().applications["classifier"].deployments["arm_control"]
        if status.status == "HEALTHY" and status.replica_states.get("RUNNING", 0) == 2:
            break
        time.sleep(1)
    assert (
        serve.status().applications["classifier"].deployments["arm_control"].replica_states.get("RUNNING", 0)
        == 2
    )
    after = app.get("/v1/experiment").json()["arms"]["control"]["n"]
    assert after >= before + 1000 - failed  # counters intact


def test_router_restart_keeps_experiment_state(app: httpx.Client) -> None:
    import ray

    before = app.get("/v1/experiment").json()
    router = [
        a
        for a in ray.util.list_named_actors(all_namespaces=True)
        if "ExperimentRouter" in a["name"] and "SERVE_REPLICA" in a["name"]
    ]
    ray.kill(ray.get_actor(router[0]["name"], namespace=router[0]["namespace"]), no_restart=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if app.get("/healthz", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(1)
    after = app.get("/v1/experiment").json()
    for arm in ("control", "treatment"):
        assert after["arms"][arm]["n"] == before["arms"][arm]["n"]
        assert after["arms"][arm]["feedback_n"] == before["arms"][arm]["feedback_n"]
    assert after["split"] == before["split"]
    assert len(after["decision_log"]) >= len(before["decision_log"])
