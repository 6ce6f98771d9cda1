"""Latency and throughput of the `classifier` A/B app over HTTP vs a direct deployment vs in-process.

    python bench/serve_latency.py [--model DIR|models:/…] [--requests 600] [--clients 8]

Same run, same machine, same model, same short texts (English + Korean GoEmotions dev):
  in-process   ClassifierPipeline.classify_batch: single texts (p50/p95) and batches of 32 (texts/s)
  no-op        the same deployment without a model: what Serve's HTTP path alone costs (the ceiling)
  direct       one Serve deployment (FastAPI ingress + @serve.batch) answering POST /v1/classify
  A/B app      monovec.serving.app:build_app: ExperimentRouter -> ClassifierArm (control/treatment),
               per-request (router micro-batches per arm) and client batches of 32 (/v1/classify/batch)
Clients: `--clients` threads with keep-alive connections, each request timed end to end; the three
apps stay deployed and are measured in alternating rounds (`--rounds`).
Targets: router overhead (A/B p50 - direct p50, median over rounds) <= 2 ms;
A/B throughput with batching >= 0.6x in-process batched.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import sys
import time
from pathlib import Path

import numpy as np

from benchlib import dev_texts

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MONOVEC_ADMIN_TOKEN", "bench")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def load(url: str, path: str, bodies: list[dict], clients: int, headers: dict | None = None) -> dict:
    import httpx

    def worker(chunk: list[dict]) -> list[tuple[float, int]]:
        out = []
        with httpx.Client(base_url=url, timeout=60) as c:
            for b in chunk:
                t = time.perf_counter()
                r = c.post(path, json=b, headers=headers or {})
                out.append(((time.perf_counter() - t) * 1000, r.status_code))
        return out

    chunks = [bodies[i::clients] for i in range(clients)]
    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(clients) as pool:
        results = [x for part in pool.map(worker, chunks) for x in part]
    wall = time.perf_counter() - t0
    return summarise(np.array([r[0] for r in results]), wall, sum(r[1] != 200 for r in results))


def summarise(lat: np.ndarray, wall_s: float, errors: int) -> dict:
    """p50/p95 latency and request rate of one load run (or of several pooled: all latencies, summed wall)."""
    return {
        "p50_ms": float(np.percentile(lat, 50)),
        "p95_ms": float(np.percentile(lat, 95)),
        "rps": len(lat) / wall_s,
        "errors": errors,
        "lat": lat,
        "wall_s": wall_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--port", type=int, default=8471)
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating measurement rounds (noise of a shared machine)"
    )
    args = parser.parse_args()

    import ray
    from fastapi import FastAPI
    from ray import serve

    from monovec.classify.model import ClassifierModel
    from monovec.classify.pipeline import ClassifierPipeline
    from monovec.classify.service import resolve_model_ref
    from monovec.embed.text import EncoderConfig, build_encoder
    from monovec.serving.app import build_app

    try:
        model_dir = str(resolve_model_ref(args.model))
    except FileNotFoundError as exc:
        print(f"error: {exc}\n(run `make quickstart` first)", file=sys.stderr)
        return 2
    texts = dev_texts(args.requests, max_chars=120)

    # in-process baseline (1 thread: a replica gets one core here)
    pipe = ClassifierPipeline(
        ClassifierModel.load(model_dir), encoder=build_encoder(EncoderConfig(threads=1))
    )
    pipe.classify_batch(texts[:16], escalate=False)
    single = []
    for t in texts[:200]:
        s = time.perf_counter()
        pipe.classify_batch([t], escalate=False)
        single.append((time.perf_counter() - s) * 1000)
    s = time.perf_counter()
    for i in range(0, len(texts), 32):
        pipe.classify_batch(texts[i : i + 32], escalate=False)
    inproc_tps = len(texts) / (time.perf_counter() - s)

    from monovec.ray_env import init_ray

    init_ray(num_cpus=2, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    url = f"http://127.0.0.1:{args.port}"

    direct_api = FastAPI()

    @serve.deployment(ray_actor_options={"num_cpus": 0.5})
    @serve.ingress(direct_api)
    class Direct:
        def __init__(self, ref: str | None) -> None:
            from monovec.classify.service import load_pipeline

            self.pipe = load_pipeline(ref, threads=1) if ref else None

        @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.002)
        async def _classify(self, texts: list[str]) -> list[dict]:
            if self.pipe is None:  # the no-op twin: what Serve's HTTP path alone costs
                return [{"text": t} for t in texts]
            return self.pipe.classify_batch(texts, escalate=False)

        @direct_api.post("/v1/classify")
        async def classify(self, body: dict) -> dict:
            return await self._classify(body["text"])

    # All three apps stay deployed and the measurement alternates between them in rounds, so slow
    # drift of a shared machine hits each path alike instead of whichever ran last.
    serve.run(
        Direct.options(name="noop", ray_actor_options={"num_cpus": 0.1}).bind(None),
        name="noop",
        route_prefix="/noop",
    )
    serve.run(Direct.bind(model_dir), name="direct", route_prefix="/direct")
    app_args = {
        "experiment": "bench",
        "state_dir": f"/tmp/monovec-bench-{os.getpid()}",
        "control": {"model": model_dir, "weight": 0.9, "num_cpus": 0.5},
        "treatment": {
            "model": model_dir,
            "weight": 0.1,
            "num_cpus": 0.5,
            "overrides": {"heads.emotion.linear.threshold": 0.4},
        },
        "guardrails": {"min_samples": 10**9},
    }
    serve.run(build_app(app_args), name="classifier", route_prefix="/ab")
    bodies = [{"text": t, "user_id": f"u{i % 97}"} for i, t in enumerate(texts)]
    batch_bodies = [{"texts": texts[i : i + 32], "user_id": f"b{i}"} for i in range(0, len(texts), 32)]
    paths = {"noop": "/noop/v1/classify", "direct": "/direct/v1/classify", "ab": "/ab/v1/classify"}
    for path in paths.values():
        load(url, path, bodies[:48], args.clients)  # warm-up
    load(url, "/ab/v1/classify/batch", batch_bodies[:4], 4)

    runs: dict[str, list[dict]] = {k: [] for k in (*paths, "ab_batch")}
    per_round = max(args.clients, len(bodies) // args.rounds)
    for r in range(args.rounds):
        chunk = bodies[(r * per_round) % len(bodies) :][:per_round]
        order = list(paths) if r % 2 == 0 else list(paths)[::-1]
        for name in order:
            runs[name].append(load(url, paths[name], chunk, args.clients))
        runs["ab_batch"].append(
            load(url, "/ab/v1/classify/batch", batch_bodies, min(args.clients, len(batch_bodies)))
        )
        print(
            f"round {r + 1}/{args.rounds}: "
            + ", ".join(f"{k} p50 {v[-1]['p50_ms']:.0f} ms" for k, v in runs.items()),
            flush=True,
        )
    # light load: one client, so the numbers are the hop itself rather than queueing behind 7 others
    light = {name: load(url, paths[name], bodies[:100], 1) for name in ("direct", "ab")}
    serve.shutdown()
    ray.shutdown()

    def pooled(name: str) -> dict:
        r = runs[name]
        return summarise(
            np.concatenate([x["lat"] for x in r]), sum(x["wall_s"] for x in r), sum(x["errors"] for x in r)
        )

    noop, direct, ab, ab_batch = (pooled(k) for k in ("noop", "direct", "ab", "ab_batch"))
    ab_batch["texts_per_s"] = ab_batch["rps"] * 32
    print(
        f"\nmodel {model_dir}; {len(texts)} short texts; {args.clients} concurrent clients; 2 CPUs; {args.rounds} alternating rounds"
    )
    print(f"{'path':<34} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>8} {'errors':>7}")
    print(
        f"{'in-process, single text':<34} {np.percentile(single, 50):>8.2f} {np.percentile(single, 95):>8.2f} {'':>8} {'':>7}"
    )
    print(f"{'in-process, batches of 32':<34} {'':>8} {'':>8} {inproc_tps:>8.0f} {'':>7}  (texts/s)")
    for name, r in (
        ("HTTP no-op deployment (ceiling)", noop),
        ("HTTP direct deployment", direct),
        ("HTTP A/B app (router + arms)", ab),
    ):
        print(f"{name:<34} {r['p50_ms']:>8.2f} {r['p95_ms']:>8.2f} {r['rps']:>8.0f} {r['errors']:>7}")
    print(
        f"{'HTTP A/B app, /batch of 32':<34} {ab_batch['p50_ms']:>8.2f} {ab_batch['p95_ms']:>8.2f} {ab_batch['texts_per_s']:>8.0f} {ab_batch['errors']:>7}  (texts/s)"
    )
    for name in ("direct", "ab"):
        r = light[name]
        print(
            f"{'1 client, ' + name:<34} {r['p50_ms']:>8.2f} {r['p95_ms']:>8.2f} {r['rps']:>8.0f} {r['errors']:>7}"
        )
    rounds = [a["p50_ms"] - d["p50_ms"] for a, d in zip(runs["ab"], runs["direct"], strict=True)]
    overhead = float(np.median(rounds))
    ratio_single = ab["rps"] / inproc_tps
    ratio_batch = ab_batch["texts_per_s"] / inproc_tps
    print(
        f"router overhead at p50 (A/B - direct, median of rounds {', '.join(f'{x:+.1f}' for x in rounds)}): {overhead:+.2f} ms (target <= 2 ms: {'PASS' if overhead <= 2 else 'FAIL'})"
    )
    print(
        f"router overhead at p50 with 1 client (the hop alone, for reference): {light['ab']['p50_ms'] - light['direct']['p50_ms']:+.2f} ms"
    )
    print(
        f"A/B throughput / in-process batched: {ratio_batch:.2f}x with client batches of 32 (target >= 0.6x: {'PASS' if ratio_batch >= 0.6 else 'FAIL'}); "
        f"{ratio_single:.2f}x one text per request, where Serve's HTTP path alone allows {noop['rps'] / inproc_tps:.2f}x (no-op ceiling)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
