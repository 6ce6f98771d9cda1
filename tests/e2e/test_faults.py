"""Faults against the A/B app over real HTTP on 127.0.0.1: what a client, the experiment and the split see.

Each test is one failure kind from issue 17, bounded in time (no wall-clock assertions: a fault must
produce the documented answer, never a hang; `httpx` timeouts bound every call):
a poisoned text in a micro-batch, client errors forced onto the treatment, a locked experiment store,
concurrent promotes, a model that disappears under a running arm, a redeploy that changes the split,
and oversize requests. The arms are the tiny real model (tests/conftest.py); the treatment carries a
`faults.fail_texts_containing` marker, the project's one fault-injection switch.
"""

from __future__ import annotations

import concurrent.futures as cf
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.e2e
PORT = 8443
URL = f"http://127.0.0.1:{PORT}"
POISON = "@@poison@@"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _args(name: str, control: str, treatment: str, state: Path, **kw) -> dict:  # noqa: ANN003
    return {
        "experiment": name,
        "control": {"model": control, "weight": 0.5, "num_cpus": 0.25},
        "treatment": {
            "model": treatment,
            "weight": 0.5,
            "num_cpus": 0.25,
            "faults": {"fail_texts_containing": POISON},
        },
        "guardrails": {
            "min_samples": 20,
            "max_error_rate": 0.1,
            "max_escalation_rate": 1.0,
            "min_accuracy": 0.0,
            "max_latency_p95_ms": 60_000,
        },
        "guardrail_check_every": 5,
        "arm_check_s": 0.5,
        "state_dir": str(state),
        **kw,
    }


@pytest.fixture(scope="module")
def serve_http(ray_session: None) -> None:
    from ray import serve

    serve.start(http_options={"host": "127.0.0.1", "port": PORT})
    yield
    serve.shutdown()


def _deploy(args: dict, name: str, blocking: bool = True) -> None:
    from ray import serve

    from monovec.serving.app import build_app

    serve._run(build_app(args), _blocking=blocking, name=name, route_prefix=f"/{name}")


def _wait(predicate, what: str, tries: int = 120, pause: float = 0.5) -> None:  # noqa: ANN001
    for _ in range(tries):
        if predicate():
            return
        time.sleep(pause)
    pytest.fail(f"gave up waiting for {what}")


@pytest.fixture(scope="module")
def app(serve_http: None, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    state = tmp_path_factory.mktemp("faults_state")
    _deploy(
        _args(
            "faults",
            str(tiny_model_dir),
            str(tiny_model_dir),
            state,
            min_step_interval_s=3600,
            ramp=[0.75, 1.0],
        ),
        "faults",
    )
    return f"{URL}/faults"


def _arm(url: str, arm: str) -> dict:
    return httpx.get(f"{url}/v1/experiment", timeout=60).json()["arms"][arm]


def test_one_poisoned_text_fails_only_its_own_request(app: str) -> None:
    before = _arm(app, "treatment")
    texts = [f"a perfectly normal message {i}" for i in range(40)]
    texts.insert(17, f"this one breaks the arm {POISON}")
    with cf.ThreadPoolExecutor(12) as pool:
        codes = list(
            pool.map(
                lambda t: httpx.post(
                    f"{app}/v1/classify",
                    json={"text": t},
                    headers={**ADMIN, "X-Monovec-Arm": "treatment"},
                    timeout=60,
                ),
                texts,
            )
        )
    assert [r.status_code for i, r in enumerate(codes) if i != 17] == [
        200
    ] * 40  # the micro-batch neighbours answered
    assert codes[17].status_code == 503 and codes[17].json()["error"]["code"] == "arm_unavailable"
    _wait(lambda: _arm(app, "treatment")["n"] >= before["n"] + 41, "41 records")
    after = _arm(app, "treatment")
    assert after["errors"] == before["errors"] + 1  # a real arm failure on that text, counted once


def test_client_errors_never_reach_the_arm_nor_its_guardrail(app: str) -> None:
    before = _arm(app, "treatment")
    for _ in range(5):  # valid JSON, a lone surrogate: the trigger for an automatic rollback
        r = httpx.post(
            f"{app}/v1/classify",
            content=b'{"text": "a\\ud800b"}',
            headers={**ADMIN, "X-Monovec-Arm": "treatment"},
            timeout=30,
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_text"
    r = httpx.post(f"{app}/v1/classify", content=b'{"text": "caf\xe9"}', timeout=30)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_utf8" and "detail" not in r.json()
    exp = httpx.get(f"{app}/v1/experiment", timeout=60).json()
    assert exp["arms"]["treatment"]["errors"] == before["errors"] and exp["split"][
        "treatment"
    ] == pytest.approx(0.5)
    assert not any(d["action"] == "rollback" for d in exp["decision_log"])


def test_forcing_an_arm_needs_the_admin_token(app: str) -> None:
    r = httpx.post(
        f"{app}/v1/classify", json={"text": "hello"}, headers={"X-Monovec-Arm": "treatment"}, timeout=30
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "arm_override_forbidden"
    r = httpx.post(
        f"{app}/v1/classify",
        json={"text": "hello"},
        headers={"X-Monovec-Arm": "treatment", "Authorization": "Bearer nope"},
        timeout=30,
    )
    assert r.status_code == 403
    assert (
        httpx.post(
            f"{app}/v1/classify",
            json={"text": "hello"},
            headers={**ADMIN, "X-Monovec-Arm": "treatment"},
            timeout=30,
        ).json()["arm"]
        == "treatment"
    )


def test_size_limits_answer_before_the_body_is_read(app: str) -> None:
    r = httpx.post(f"{app}/v1/classify", json={"text": "hi"}, headers={"X-Big": "b" * 1_000_000}, timeout=30)
    assert r.status_code == 431 and r.json()["error"]["code"] == "headers_too_large"

    def fifty_megabytes():  # streamed with a declared length: refused from Content-Length
        chunk = b"x" * (1 << 20)
        for _ in range(50):
            yield chunk

    r = httpx.post(
        f"{app}/v1/classify", content=fifty_megabytes(), headers={"Content-Length": str(50 << 20)}, timeout=60
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


def test_a_locked_store_keeps_answers_recorded_and_feedback_fails_fast(
    app: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    exp = httpx.get(f"{app}/v1/experiment", timeout=60).json()
    db = next(
        Path(p) for p in Path(tmp_path_factory.getbasetemp()).glob("faults_state*/experiments/faults.sqlite")
    )
    total_before = sum(a["n"] for a in exp["arms"].values())
    first = httpx.post(
        f"{app}/v1/classify", json={"text": "before the lock", "user_id": "u-lock"}, timeout=30
    ).json()
    _wait(
        lambda: (
            sum(a["n"] for a in httpx.get(f"{app}/v1/experiment", timeout=60).json()["arms"].values())
            > total_before
        ),
        "the first record",
    )
    started, release = threading.Event(), threading.Event()

    def hold() -> None:  # another writer (a backup, a CLI) holds the write lock
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        started.set()
        release.wait(60)
        conn.execute("COMMIT")
        conn.close()

    locker = threading.Thread(target=hold)
    locker.start()
    started.wait(10)
    try:
        answered = [
            httpx.post(
                f"{app}/v1/classify", json={"text": f"during the lock {i}", "user_id": f"u{i}"}, timeout=30
            )
            for i in range(30)
        ]
        assert [r.status_code for r in answered] == [200] * 30
        fb = httpx.post(
            f"{app}/v1/feedback", json={"request_id": first["request_id"], "satisfied": True}, timeout=30
        )
        assert (
            fb.status_code == 503 and fb.json()["error"]["code"] == "store_busy" and fb.headers["retry-after"]
        )
    finally:
        release.set()
        locker.join()
    _wait(
        lambda: (
            sum(a["n"] for a in httpx.get(f"{app}/v1/experiment", timeout=60).json()["arms"].values())
            >= total_before + 31
        ),
        "31 records",
    )
    recording = httpx.get(f"{app}/v1/experiment", timeout=60).json()["recording"]
    assert recording["dropped"] == 0 and recording["pending"] == 0
    assert httpx.post(
        f"{app}/v1/feedback", json={"request_id": first["request_id"], "satisfied": True}, timeout=30
    ).json() == {"ok": True}


def test_concurrent_promotes_take_one_step(app: str) -> None:
    with cf.ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(
                lambda _: httpx.post(f"{app}/v1/experiment/promote", headers=ADMIN, timeout=60), range(4)
            )
        )
    assert sorted(r.status_code for r in answers) == [200, 409, 409, 409], [r.text for r in answers]
    assert {r.json()["error"]["code"] for r in answers if r.status_code == 409} == {"step_too_soon"}
    assert httpx.get(f"{app}/v1/experiment", timeout=60).json()["split"]["treatment"] == pytest.approx(
        0.75
    )  # one step
    last = httpx.post(
        f"{app}/v1/experiment/promote", headers=ADMIN, json={"expected_treatment_weight": 0.75}, timeout=60
    ).json()
    assert last["action"] == "promote_to_production" and last["split"]["treatment"] == pytest.approx(1.0)
    with cf.ThreadPoolExecutor(
        3
    ) as pool:  # a retried request and a double click at 100%: nothing moves again
        again = list(
            pool.map(
                lambda _: httpx.post(
                    f"{app}/v1/experiment/promote",
                    headers=ADMIN,
                    json={"expected_treatment_weight": 1.0},
                    timeout=60,
                ).json(),
                range(3),
            )
        )
    assert {a["action"] for a in again} == {"already_promoted"}
    log = [d["action"] for d in httpx.get(f"{app}/v1/experiment", timeout=60).json()["decision_log"]]
    assert (
        log.count("ramp") == 1
        and log.count("promote") == 1
        and log.count("alias_moved") + log.count("alias_unchanged") == 1
    )


def test_a_redeploy_with_another_split_is_applied_and_logged(
    serve_http: None, tiny_model_dir: Path, tmp_path: Path
) -> None:
    _deploy(_args("resplit", str(tiny_model_dir), str(tiny_model_dir), tmp_path), "resplit")
    url = f"{URL}/resplit"
    assert httpx.get(f"{url}/v1/experiment", timeout=60).json()["split"] == {"control": 0.5, "treatment": 0.5}
    moved = _args("resplit", str(tiny_model_dir), str(tiny_model_dir), tmp_path)
    moved["control"]["weight"], moved["treatment"]["weight"] = 0.8, 0.2
    _deploy(moved, "resplit")
    _wait(
        lambda: (
            httpx.get(f"{url}/v1/experiment", timeout=60).json()["split"]
            == {"control": 0.8, "treatment": 0.2}
        ),
        "the new split",
    )
    log = httpx.get(f"{url}/v1/experiment", timeout=60).json()["decision_log"]
    assert log[-1]["action"] == "config_split"
    from ray import serve

    serve.delete("resplit")


def test_a_model_that_disappears_fails_fast_and_traffic_moves_to_the_other_arm(
    serve_http: None, tiny_model_dir: Path, tmp_path: Path
) -> None:
    import ray
    from ray import serve

    doomed = tmp_path / "doomed-model"
    shutil.copytree(tiny_model_dir, doomed)
    _deploy(_args("missing", str(tiny_model_dir), str(doomed), tmp_path), "missing")
    url = f"{URL}/missing"
    assert httpx.get(f"{url}/healthz", timeout=60).json()["status"] == "ok"
    shutil.rmtree(doomed)  # the registry alias deleted / the volume gone, then the replica restarts
    replica = next(
        a
        for a in ray.util.list_named_actors(all_namespaces=True)
        if "arm_treatment" in a["name"] and "SERVE_REPLICA" in a["name"] and "missing" in a["name"]
    )
    ray.kill(ray.get_actor(replica["name"], namespace=replica["namespace"]), no_restart=True)
    _wait(
        lambda: httpx.get(f"{url}/healthz", timeout=30).json()["status"] == "degraded",
        "/healthz to say degraded",
    )
    health = httpx.get(f"{url}/healthz", timeout=30)
    assert health.status_code == 200 and health.json()["models"]["treatment"]["status"] == "unavailable"
    forced = httpx.post(
        f"{url}/v1/classify", json={"text": "hi"}, headers={**ADMIN, "X-Monovec-Arm": "treatment"}, timeout=30
    )
    assert forced.status_code == 503 and forced.json()["error"]["code"] == "arm_unavailable"
    answers = [
        httpx.post(f"{url}/v1/classify", json={"text": "hello", "user_id": f"user-{i}"}, timeout=30).json()
        for i in range(20)
    ]
    assert all(a["arm"] == "control" for a in answers)
    assert any(a.get("assigned_arm") == "treatment" for a in answers)  # these users' arm could not serve them
    exp = httpx.get(f"{url}/v1/experiment", timeout=30).json()
    assert exp["arms"]["treatment"]["available"] is False and exp["arms"]["control"]["available"] is True
    serve.delete("missing", _blocking=False)
