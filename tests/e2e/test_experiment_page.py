"""The experiment page (`GET /`) in a real headless Chromium, against the real app over HTTP.

Debian's `chromium` + `chromium-driver` (installed by .ci/run), driven by Selenium with the driver
path given, so Selenium Manager never downloads anything. Two apps share one in-process Serve:
`/zero` (no traffic, then a rolled-back treatment; arms are model directories, the treatment with
other thresholds) and `/` (two MLflow registry versions of the tiny real model as `@champion` and
`@candidate`; traffic and simulated feedback, then every admin path through the page: empty token,
wrong token, a double click, a stale page, the right token).
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import json
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.e2e
PORT = 8467
URL = f"http://127.0.0.1:{PORT}"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
EMOTIONS = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
TEXTS = [
    "the parcel finally arrived and it was intact",
    "I waited two hours and nobody called back",
    "this update made the app so much faster",
    "not sure what to think about the new menu",
    "오늘 회의가 너무 길어서 지쳤어요",
    "새 기능 덕분에 일이 훨씬 편해졌어요",
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.fail(
            "headless Chromium is missing: apt-get install -y chromium chromium-driver (.ci/run does this)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def serve_http(ray_session: None) -> Iterator[httpx.Client]:
    from ray import serve

    serve.start(http_options={"host": "127.0.0.1", "port": PORT})
    with httpx.Client(base_url=URL, timeout=30) as client:
        yield client
    serve.shutdown()


@pytest.fixture(scope="module")
def registered(ray_session: None, tiny_model_dir: Path) -> str:
    """The tiny model registered twice: v1 `@champion`, v2 `@candidate` (as two builds would leave it)."""
    from monovec.classify.build import BuildConfig
    from monovec.config import load_config
    from monovec.infra import TrackingConfig
    from monovec.tracking.mlflow_store import log_and_register
    from tests.conftest import REPO

    cfg = load_config(BuildConfig, REPO / "jobs/configs/classifier.yaml")
    for _ in range(2):
        log_and_register(
            tiny_model_dir,
            cfg,
            {"dummy": 1.0},
            TrackingConfig(experiment="page", registered_model="page-classifier", alias="candidate"),
        )
    return "page-classifier"


def _deploy(name: str, prefix: str, control: str, treatment: dict[str, Any], home: Path) -> None:
    from ray import serve

    from monovec.serving.app import build_app

    serve.run(
        build_app(
            {
                "experiment": f"page-{name}",
                "control": {"model": control, "weight": 0.9, "num_cpus": 0.25},
                "treatment": {"weight": 0.1, "num_cpus": 0.25, **treatment},
                # guardrails are shown, not acted on (the tiny model escalates most texts: limits it meets, since a
                # breached guardrail would refuse the promotes this module makes; that refusal has its own tests)
                "guardrails": {
                    "min_samples": 30,
                    "max_latency_p95_ms": 60_000,
                    "min_accuracy": 0.0,
                    "max_escalation_rate": 1.0,
                },
                "auto_rollback": False,
                "decision": {"min_samples_per_arm": 40, "max_samples_per_arm": 400},
                "drift": {"min_samples": 20, "mmd_permutations": 50},
                "drift_refresh_s": 0,  # the screenshots show drift as of now
                "ramp": [0.25, 0.5, 1.0],
                "state_dir": str(home / f"page-{name}"),
            }
        ),
        name=name,
        route_prefix=prefix,
    )


def _wait(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def _polls(driver: Any) -> int:
    return int(driver.execute_script("return Number(document.body.dataset.polls)"))


def _fresh(driver: Any, after: int = 2) -> None:
    """Wait until the page has polled `after` more times (its data is newer than what we read)."""
    start = _polls(driver)
    _wait(f"{after} page refreshes", lambda: _polls(driver) >= start + after)


def _text(driver: Any, element_id: str) -> str:
    return driver.execute_script("return document.getElementById(arguments[0]).textContent", element_id)


def _cells(driver: Any, selector: str) -> list[dict[str, Any]]:
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => ({arm: e.dataset.arm || null,"
        " key: e.dataset.key, value: e.dataset.value, text: e.textContent}))",
        selector,
    )


def _console_errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _screenshot(driver: Any, path: Path) -> Path:
    """The whole page, not just the window (DevTools' captureBeyondViewport)."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    assert path.stat().st_size > 20_000, "the screenshot is (nearly) empty"
    return path


def _click_confirmed(driver: Any, button: str) -> None:
    driver.find_element("id", button).click()
    _wait("the confirm bar", lambda: driver.find_element("id", "confirm").is_displayed())
    driver.find_element("id", "confirm-yes").click()


def _admin_message(driver: Any, prefix: str) -> str:
    return _wait(
        f"admin message {prefix!r}", lambda: (m := _text(driver, "admin-msg")).startswith(prefix) and m
    )


def _traffic(client: httpx.Client, prefix: str, n: int, seed: int = 0) -> None:
    """`n` requests (a third from sticky users, the rest forced alternately to each arm), each with
    simulated feedback (the treatment right more often), and a look at the experiment every 10."""
    rng = random.Random(seed)
    quality = {"control": 0.7, "treatment": 0.92}

    def one(i: int) -> None:
        headers = (
            {}
            if i % 3 == 0
            else {"X-Monovec-Arm": ("control", "treatment")[i % 2], "Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        r = client.post(
            f"{prefix}/v1/classify",
            json={"text": f"{TEXTS[i % len(TEXTS)]} ({i})", "user_id": f"user-{i}"},
            headers=headers,
        )
        assert r.status_code == 200, r.text
        res = r.json()
        served = res["heads"]["emotion"]["label"]
        pick = random.Random(seed * 10_000 + i)
        truth = (
            served
            if pick.random() < quality[res["arm"]]
            else pick.choice([e for e in EMOTIONS if e != served])
        )
        fb = client.post(
            f"{prefix}/v1/feedback",
            json={
                "request_id": res["request_id"],
                "correct": {"emotion": truth},
                "satisfied": pick.random() < quality[res["arm"]],
            },
        )
        assert fb.status_code == 200, fb.text

    order = list(range(n))
    rng.shuffle(order)
    with cf.ThreadPoolExecutor(4) as pool:
        for start in range(0, n, 10):
            list(pool.map(one, order[start : start + 10]))
            assert (
                client.get(f"{prefix}/v1/experiment").status_code == 200
            )  # a look: one point of the test's history


def test_page_with_zero_traffic_then_a_rolled_back_treatment(
    serve_http: httpx.Client, browser: Any, tiny_model_dir: Path, monovec_home: Path, tmp_path: Path
) -> None:
    from ray import serve

    t0 = time.perf_counter()
    _deploy(
        "zero",
        "/zero",
        str(tiny_model_dir),
        {"model": str(tiny_model_dir), "overrides": {"heads.emotion.linear.threshold": 0.3}},
        monovec_home,
    )
    page = serve_http.get("/zero/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert '<meta name="monovec-base" content="/zero">' in page.text
    assert serve_http.get("/zero/ui").text == page.text

    browser.get(f"{URL}/zero/?refresh=1")
    _wait("the first render", lambda: browser.execute_script("return document.body.dataset.state") == "ready")
    browser.execute_script("window.__sameDocument = 'yes'")  # gone if the page reloads itself
    api = serve_http.get("/zero/v1/experiment").json()
    counts = {(c["arm"], c["key"]): c for c in _cells(browser, "#arms-table [data-arm][data-key]")}
    for arm in ("control", "treatment"):
        assert counts[(arm, "n")]["text"] == "0" and json.loads(counts[(arm, "n")]["value"]) == 0
        assert counts[(arm, "latency_p95_ms")]["text"] == "–"  # no requests: no latency, not "0 ms"
        assert counts[(arm, "accuracy")]["text"] == "–" and counts[(arm, "accuracy_ci95")]["value"] == "null"
        assert api["arms"][arm]["accuracy_ci95"] is None
    assert _text(browser, "split-treatment") == "10%"
    assert browser.execute_script("return document.getElementById('chart').dataset.points") == "0"
    assert "no look yet" in _text(browser, "chart")
    assert _text(browser, "btn-promote") == "Promote → 25%"
    assert browser.execute_script(
        "return [...document.querySelectorAll('#log-table tbody tr')].map(r => r.dataset.action)"
    ) == ["initial_split"]
    # nothing loaded from anywhere but this server, nothing blocked, no script error
    origins = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => new URL(e.name).origin)"
    )
    assert set(origins) <= {URL}, origins
    assert _console_errors(browser) == []

    r = serve_http.post(
        "/zero/v1/experiment/rollback", headers=AUTH, json={"reason": "zero-traffic rollback"}
    )
    assert r.status_code == 200 and r.json()["split"]["treatment"] == 0.0
    _wait("the page to show the rollback", lambda: _text(browser, "split-treatment") == "0%")
    assert browser.execute_script("return window.__sameDocument") == "yes"  # refreshed without reloading
    assert browser.find_element("id", "btn-rollback").get_attribute("disabled") is not None
    assert _text(browser, "btn-promote") == "Promote → 25%"
    top = browser.execute_script("return document.querySelector('#log-table tbody tr').dataset.action")
    assert top == "rollback"
    assert _console_errors(browser) == []
    _screenshot(browser, tmp_path / "experiment-page-rolled-back.png")
    browser.get("about:blank")  # stop its polling before the app goes away
    browser.get_log("browser")
    serve.delete("zero")
    print(f"\nzero-traffic page test: {time.perf_counter() - t0:.1f} s (deploy included)")


def test_page_shows_the_api_numbers_and_steers_the_rollout(
    serve_http: httpx.Client, browser: Any, registered: str, monovec_home: Path, tmp_path: Path
) -> None:
    t0 = time.perf_counter()
    _deploy(
        "main",
        "/",
        f"models:/{registered}@champion",
        {"model": f"models:/{registered}@candidate"},
        monovec_home,
    )
    t_deploy = time.perf_counter()
    _traffic(serve_http, "", 150)
    t_traffic = time.perf_counter()

    browser.get(f"{URL}/?refresh=1")
    _wait("the first render", lambda: browser.execute_script("return document.body.dataset.state") == "ready")
    api = serve_http.get("/v1/experiment").json()
    _fresh(browser)  # the page's data is now at least as new as `api`; nothing changes meanwhile

    # -- every per-arm number on the page is the API's value, and its text says the same ------------
    cells = _cells(browser, "#arms-table [data-arm][data-key]")
    assert {c["arm"] for c in cells} == {"control", "treatment"} and len(cells) >= 2 * 17
    for c in cells:
        stats = api["arms"][c["arm"]]
        want = api["split"].get(c["arm"]) if c["key"] == "split" else stats[c["key"]]
        assert json.loads(c["value"]) == want, (c, want)
        if c["key"] in ("n", "errors", "feedback_n"):
            assert c["text"] == str(want)
        elif c["key"].endswith("_rate") or c["key"] in ("accuracy", "satisfaction"):
            assert abs(float(c["text"].rstrip("%")) - 100 * want) <= 0.05 + 1e-9, c
        elif c["key"].endswith("_ms"):
            assert abs(float(c["text"].removesuffix(" ms")) - want) <= 0.05 + 1e-9, c
        elif c["key"].endswith("_ci95"):
            lo, hi = (float(x) for x in c["text"].strip("[%]").split("–"))
            assert abs(lo - 100 * want[0]) <= 0.05 + 1e-9 and abs(hi - 100 * want[1]) <= 0.05 + 1e-9, c
    for arm in ("control", "treatment"):  # feedback arrived on both arms: intervals around the estimate
        lo, hi = api["arms"][arm]["accuracy_ci95"]
        assert lo < api["arms"][arm]["accuracy"] < hi
    shown = {(c["arm"], c["key"]): c["text"] for c in cells}
    assert (
        shown[("control", "registry")] == f"{registered} v1"
        and shown[("treatment", "registry")] == f"{registered} v2"
    )
    assert shown[("treatment", "model")] == f"models:/{registered}@candidate"
    for c in _cells(browser, "#test-kv [data-key^='test.']"):
        assert json.loads(c["value"]) == api["test"][c["key"].removeprefix("test.")], c
    for c in _cells(browser, "#guardrails-table [data-arm][data-key]"):
        assert (
            json.loads(c["value"])
            == api["arms"][c["arm"]]["guardrails"]["states"][c["key"].removeprefix("guardrail.")]["value"]
        )
    for c in _cells(browser, "#drift-table [data-arm][data-key='drift.drift']"):
        assert json.loads(c["value"]) == api["drift"][c["arm"]]["drift"]
    assert (
        browser.execute_script("return document.getElementById('recommended').dataset.value")
        == api["recommended_action"]
    )
    assert _text(browser, "reason") == api["reason"]
    # -- the sequential test's history is the chart ---------------------------------------------------
    history = api["test_history"]
    assert len(history) >= 10, len(history)
    zs = browser.execute_script(
        "return [...document.querySelectorAll('#chart circle')].map(c => JSON.parse(c.dataset.z))"
    )
    assert zs == [p["z"] for p in history]
    assert (
        history[-1]["z"] == pytest.approx(api["test"]["z"])
        and history[-1]["n_control"] == api["test"]["n_control"]
    )
    assert _console_errors(browser) == []
    shot = _screenshot(browser, tmp_path / "experiment-page.png")
    t_checked = time.perf_counter()

    log_len = len(api["decision_log"])

    def split() -> float:
        return serve_http.get("/v1/experiment").json()["split"]["treatment"]

    # -- empty token: nothing is sent -------------------------------------------------------------------
    browser.find_element("id", "btn-rollback").click()
    assert _admin_message(browser, "Enter the admin token first")
    assert not browser.find_element("id", "confirm").is_displayed()
    # -- wrong token: refused, the split and the log unchanged ------------------------------------------
    browser.find_element("id", "token").send_keys("wrong-token")
    _click_confirmed(browser, "btn-rollback")
    assert "401 unauthorized" in _admin_message(browser, "Refused")
    assert split() == 0.1 and len(serve_http.get("/v1/experiment").json()["decision_log"]) == log_len
    # -- right token, confirm double-clicked: exactly one ramp step --------------------------------------
    browser.find_element("id", "token").clear()
    browser.find_element("id", "token").send_keys(ADMIN_TOKEN)
    browser.find_element("id", "btn-promote").click()
    _wait("the confirm bar", lambda: browser.find_element("id", "confirm").is_displayed())
    browser.execute_script("const b = document.getElementById('confirm-yes'); b.click(); b.click();")
    assert "treatment now 25%" in _admin_message(browser, "Done")
    after = serve_http.get("/v1/experiment").json()
    assert after["split"]["treatment"] == 0.25 and after["ramp"]["step"] == 1
    assert [d["action"] for d in after["decision_log"][log_len:]] == ["ramp"]
    _wait("the page to show 25%", lambda: _text(browser, "split-treatment") == "25%")
    ramped = _screenshot(browser, tmp_path / "experiment-page-ramped.png")  # docs/img/experiment-page.png
    # -- a stale page: someone else promoted meanwhile; the page's promote is refused, not applied twice --
    browser.find_element("id", "pause").click()
    other = serve_http.post(
        "/v1/experiment/promote",
        headers=AUTH,
        json={"expected_treatment_weight": 0.25, "reason": "second operator"},
    )
    assert other.status_code == 200 and other.json()["split"]["treatment"] == 0.5
    assert _text(browser, "split-treatment") == "25%"  # paused: the page still believes 25%
    _click_confirmed(browser, "btn-promote")
    assert "409 stale_split" in _admin_message(browser, "Not applied")
    assert split() == 0.5  # not 1.0: the stale click did not promote to production
    _wait("the page to catch up", lambda: _text(browser, "split-treatment") == "50%")
    # -- rollback with the right token and a reason carrying markup (shown as text, never run) ------------
    note = '<img src=x onerror="window.__injected = 1">'
    browser.find_element("id", "note").send_keys(note)
    _click_confirmed(browser, "btn-rollback")
    assert "treatment now 0%" in _admin_message(browser, "Done")
    final = serve_http.get("/v1/experiment").json()
    assert final["split"] == {"control": 1.0, "treatment": 0.0}
    assert final["decision_log"][-1]["action"] == "rollback"
    assert final["decision_log"][-1]["reason"] == f"rollback from the experiment page: {note}"
    _wait(
        "the logged rollback on the page",
        lambda: (
            browser.execute_script(
                "return document.querySelector('#log-table tbody tr .log-reason').textContent"
            )
            == final["decision_log"][-1]["reason"]
        ),
    )
    assert browser.execute_script("return window.__injected") is None
    assert browser.execute_script("return document.querySelectorAll('#log-table img').length") == 0
    assert browser.find_element("id", "btn-rollback").get_attribute("disabled") is not None
    # the token went nowhere but the request header, unless the person asks the tab to remember it
    assert browser.execute_script("return [document.cookie, sessionStorage.length, localStorage.length]") == [
        "",
        0,
        0,
    ]
    browser.find_element("id", "remember").click()
    assert browser.execute_script(
        "return [sessionStorage.getItem('monovec-admin-token'), document.cookie, localStorage.length]"
    ) == [ADMIN_TOKEN, "", 0]
    browser.find_element("id", "remember").click()
    assert browser.execute_script("return sessionStorage.length") == 0
    errors = _console_errors(browser)  # the refused requests are logged by Chromium; nothing else may be
    assert len(errors) == 2 and all(" 401 " in m or " 409 " in m for m in errors), errors
    _screenshot(browser, tmp_path / "experiment-page-after-rollback.png")
    t_end = time.perf_counter()
    print(
        f"\npage test: deploy {t_deploy - t0:.1f} s, traffic {t_traffic - t_deploy:.1f} s,"
        f" load+compare {t_checked - t_traffic:.1f} s, admin paths {t_end - t_checked:.1f} s; screenshots {shot}, {ramped}"
    )


def test_admin_body_is_validated_and_a_stale_expectation_changes_nothing(serve_http: httpx.Client) -> None:
    """The server half of what the page relies on (runs on the `/` app after the browser test)."""
    before = serve_http.get("/v1/experiment").json()
    bad = serve_http.post("/v1/experiment/promote", headers=AUTH, json={"expected_treatment_weight": 2})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
    bad = serve_http.post(
        "/v1/experiment/promote", headers={**AUTH, "content-type": "application/json"}, content=b"{nope"
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "malformed_json"
    bad = serve_http.post(
        "/v1/experiment/promote", headers=AUTH, json={"expected_treatment_weight": 0.5, "extra": 1}
    )
    assert bad.status_code == 422
    stale = serve_http.post("/v1/experiment/promote", headers=AUTH, json={"expected_treatment_weight": 0.5})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "stale_split"
    assert "treatment=0" in stale.json()["error"]["message"]
    after = serve_http.get("/v1/experiment").json()
    assert after["split"] == before["split"] and len(after["decision_log"]) == len(before["decision_log"])
