"""Soak of the A/B app with faults mixed in: does every answer land in the experiment, and do client
mistakes ever cost a 5xx?

    python bench/serve_soak.py [--model DIR|models:/…] [--requests 3000] [--clients 8]

One in-process Ray + Serve on 127.0.0.1; the app is the shipped builder with the same model in both arms
(the treatment carries the fault-injection marker). Traffic, from `--clients` keep-alive clients: valid
single texts (most), batches with bad items, client mistakes (malformed JSON, invalid UTF-8, lone
surrogates, empty text, a forced arm without the token), poisoned texts that break the treatment, and
feedback for answered requests. Faults during the run: an arm replica killed at 30% of the traffic and
the experiment's sqlite write-locked for 5 s at 60%.

Printed: counts per outcome, then the checks (ratios against their ideal, 1.0 = perfect):
  recorded / answered      every answered classification is in the experiment's counts
  client 4xx / sent bad    every client mistake got a 4xx in the documented shape
  5xx from client mistakes must be 0 (5xx only for injected faults: the killed replica, the poison, the lock)
and latency p50 of valid requests during the fault phases against the fault-free first 25% (ratio).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import random
import sqlite3
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ADMIN_TOKEN = "soak-admin"
POISON = "@@poison@@"
PORT = 8511


def texts(n: int) -> list[str]:
    from monovec.paths import data_dir

    out: list[str] = []
    with (data_dir() / "goemotions" / "dev.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            out += [rec["text_en"][:160], rec["text_ko"][:160]]
            if len(out) >= n:
                break
    return out


def plan(n: int, pool: list[str], seed: int = 0) -> list[tuple[str, object]]:
    """The traffic: (kind, payload) in a seeded order."""
    rng = random.Random(seed)
    mistakes = [
        b"{nope",
        b'{"text": "caf\xe9"}',
        b'{"text": "a\\ud800b"}',
        b'{"text": ""}',
        b'{"text": 5}',
        b"[" * 50 + b"]" * 50,
    ]
    out: list[tuple[str, object]] = []
    for i in range(n):
        r = rng.random()
        if r < 0.70:
            out.append(("text", rng.choice(pool)))
        elif r < 0.78:
            out.append(("batch", [rng.choice(pool), "", rng.choice(pool), 7]))
        elif r < 0.90:
            out.append(("mistake", rng.choice(mistakes)))
        elif r < 0.93:
            out.append(("forced_no_token", rng.choice(pool)))
        elif r < 0.94:
            out.append(("poison", f"{rng.choice(pool)} {POISON}"))
        else:
            out.append(("feedback", i))
    return out


def main() -> int:  # noqa: PLR0915 - one linear script
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="model folder or registry ref (default: the newest local build)")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    import httpx
    import ray
    from ray import serve

    from monovec.classify.service import resolve_model_ref
    from monovec.ray_env import init_ray
    from monovec.serving.app import build_app

    os.environ["MONOVEC_ADMIN_TOKEN"] = ADMIN_TOKEN  # the replicas inherit it from this driver's Ray
    model = str(resolve_model_ref(args.model))
    state = Path(tempfile.mkdtemp(prefix="soak-"))
    init_ray(num_cpus=2, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": PORT})
    app_args = {
        "experiment": "soak",
        "control": {"model": model, "weight": 0.5, "num_cpus": 0.5, "num_replicas": 2},
        "treatment": {
            "model": model,
            "weight": 0.5,
            "num_cpus": 0.25,
            "faults": {"fail_texts_containing": POISON},
        },
        "guardrails": {"min_samples": 10**9},  # the soak measures recording, not rollback
        "state_dir": str(state),
    }
    serve.run(build_app(app_args), name="soak", route_prefix="/")
    url = f"http://127.0.0.1:{PORT}"
    traffic = plan(args.requests, texts(400))
    answered_ids: list[str] = []
    outcomes: Counter[str] = Counter()
    five_from_mistakes: list[str] = []
    latency: dict[str, list[float]] = {"before": [], "faults": []}
    answered_items = 0
    lock = threading.Lock()

    def send(i: int, kind: str, payload: object) -> None:
        nonlocal answered_items
        phase = "before" if i < len(traffic) // 4 else "faults"
        with httpx.Client(base_url=url, timeout=60) as c:
            t0 = time.perf_counter()
            if kind in ("text", "poison"):
                r = c.post("/v1/classify", json={"text": payload, "user_id": f"u{i % 300}"})
            elif kind == "forced_no_token":
                r = c.post("/v1/classify", json={"text": payload}, headers={"X-Monovec-Arm": "treatment"})
            elif kind == "batch":
                r = c.post("/v1/classify/batch", json={"texts": payload, "user_id": f"u{i % 300}"})
            elif kind == "mistake":
                r = c.post("/v1/classify", content=payload)
            else:
                with lock:
                    rid = answered_ids[-1] if answered_ids else "none"
                r = c.post("/v1/feedback", json={"request_id": rid, "satisfied": True})
            ms = (time.perf_counter() - t0) * 1000
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        code = body.get("error", {}).get("code", "") if isinstance(body, dict) else ""
        with lock:
            outcomes[f"{kind} {r.status_code} {code}".strip()] += 1
            if r.status_code >= 500 and kind in ("mistake", "forced_no_token", "batch"):
                five_from_mistakes.append(f"{kind} -> {r.status_code} {code}")
            if (
                kind in ("text", "poison") and r.status_code == 200
            ):  # a poisoned text the control answers counts
                answered_ids.append(body["request_id"])
                answered_items += 1
                if kind == "text":
                    latency[phase].append(ms)
            if kind == "batch" and r.status_code == 200:
                answered_items += sum("heads" in x for x in body["results"])

    def faults() -> None:
        done = lambda frac: sum(outcomes.values()) >= frac * len(traffic)  # noqa: E731
        while not done(0.3):
            time.sleep(0.2)
        victim = next(
            a
            for a in ray.util.list_named_actors(all_namespaces=True)
            if "arm_control" in a["name"] and "SERVE_REPLICA" in a["name"]
        )
        ray.kill(ray.get_actor(victim["name"], namespace=victim["namespace"]), no_restart=True)
        print("fault: killed one control replica")
        while not done(0.6):
            time.sleep(0.2)
        conn = sqlite3.connect(state / "experiments" / "soak.sqlite", isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        print("fault: experiment store write-locked for 5 s")
        time.sleep(5)
        conn.execute("COMMIT")
        conn.close()

    injector = threading.Thread(target=faults, daemon=True)
    injector.start()
    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(lambda item: send(item[0], *item[1]), enumerate(traffic)))
    seconds = time.perf_counter() - t0
    injector.join(timeout=30)
    recorded = 0
    for _ in range(120):  # the write-behind catches up after the lock
        exp = httpx.get(f"{url}/v1/experiment", timeout=60).json()
        recorded = sum(a["n"] - a["errors"] for a in exp["arms"].values())
        if recorded >= answered_items and exp["recording"]["pending"] == 0:
            break
        time.sleep(1)
    sent_bad = sum(v for k, v in outcomes.items() if k.startswith(("mistake", "forced_no_token")))
    got_4xx = sum(
        v for k, v in outcomes.items() if k.startswith(("mistake", "forced_no_token")) and " 4" in k
    )
    print(f"{len(traffic)} requests from {args.clients} clients in {seconds:.0f}s")
    for key, count in sorted(outcomes.items()):
        print(f"  {count:6d}  {key}")
    print(f"recording: {exp['recording']}")
    print(
        f"recorded / answered:      {recorded} / {answered_items} = {recorded / max(answered_items, 1):.4f}"
    )
    print(f"client 4xx / sent bad:    {got_4xx} / {sent_bad} = {got_4xx / max(sent_bad, 1):.4f}")
    print(f"5xx from client mistakes: {len(five_from_mistakes)} {five_from_mistakes[:5]}")
    if latency["before"] and latency["faults"]:
        a, b = statistics.median(latency["before"]), statistics.median(latency["faults"])
        print(f"p50 latency of valid texts: {b:.1f} ms with faults vs {a:.1f} ms before = {b / a:.2f}x")
    serve.shutdown()
    ok = recorded == answered_items and got_4xx == sent_bad and not five_from_mistakes
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
