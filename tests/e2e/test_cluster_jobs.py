"""`monovec cluster up` -> `ray job submit` of the build job -> registered in MLflow -> `cluster down`.

Real processes, real HTTP on 127.0.0.1, real token auth. Ports differ from the defaults so a
developer's own head on 8265/6379 is never touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, safety_overrides

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
DASHBOARD = 8297
GCS = 6417
URL = f"http://127.0.0.1:{DASHBOARD}"


def _run(args: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def head(data_dir: Path):
    from monovec.cluster import cluster_down

    up = _run([str(BIN / "monovec"), "cluster", "up", "--num-cpus", "2", "--dashboard-port", str(DASHBOARD), "--port", str(GCS)])
    assert up.returncode == 0, up.stdout + up.stderr
    assert URL in up.stdout and "token" not in up.stdout.split("token auth on")[0]
    try:
        yield
    finally:
        cluster_down()


def test_job_submit_builds_and_registers(head: None, monovec_home: Path) -> None:
    overrides = [
        "classifier.heads.emotion.train.0.max_rows=400", "classifier.heads.ethics.train.0.max_rows=400",
        "classifier.heads.emotion.dev.0.max_rows=100", "classifier.heads.ethics.dev.0.max_rows=100",
        "reference_sample=100", *safety_overrides(400, 100),
    ]  # fmt: skip
    res = _run(
        [str(BIN / "ray"), "job", "submit", "--address", URL, "--working-dir", ".", "--",
         "python", "jobs/build_classifier.py", "--config", "jobs/configs/classifier.yaml", *overrides],
        env={"RAY_AUTH_MODE": "token"},
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "succeeded" in (res.stdout + res.stderr)
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{monovec_home / 'mlflow.db'}")
    versions = client.search_model_versions("name='monovec-classifier'")
    assert len(versions) >= 1
    run = client.get_run(versions[0].run_id)
    assert run.data.metrics["emotion.en.pipeline.macro_f1"] > 0.2  # the job trained something real


def test_submission_needs_the_token(head: None) -> None:
    code = (
        "from ray.job_submission import JobSubmissionClient\n"
        f"c = JobSubmissionClient('{URL}')\n"
        "print(c.submit_job(entrypoint='echo ok'))\n"
    )
    wrong = _run([sys.executable, "-c", code], env={"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "not-the-token"}, timeout=60)
    assert wrong.returncode != 0 and "AuthenticationError" in wrong.stderr
    right = _run([sys.executable, "-c", code], env={"RAY_AUTH_MODE": "token"}, timeout=60)
    assert right.returncode == 0 and right.stdout.strip().startswith("raysubmit_"), right.stderr[-2000:]


def test_cluster_down_leaves_nothing_behind(head: None) -> None:
    from monovec.cluster import cluster_down, cluster_status, our_processes

    info = cluster_status()
    assert info["running"]
    assert cluster_down() > 0
    assert our_processes(info["temp_dir"]) == []
    assert not cluster_status()["running"]
