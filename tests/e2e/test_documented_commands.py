"""Every shell command printed in README.md and docs/ runs, as printed, the way a new user runs it.

The commands run in order, as one user's session, in a fresh copy of the project (its tracked files,
the same `.venv`, `../shared` beside it) with nothing exported but `PATH` (the venv's `bin/` first, as
after `source .venv/bin/activate`), `HOME` and a UTF-8 locale: no MONOVEC_*, no RAY_*, no token in the
environment, the shipped configs, the default ports. Each step checks what a person would look at:
the exit status, the answer, the files written; the Ray head's listeners are watched for as long as it
runs (every one must be on 127.0.0.1) and nothing of it may be left after `cluster down`.

`test_every_documented_command_is_in_the_journey` fails on a printed command that no step runs, and on
a step whose command no page prints any more (docs and tests cannot drift apart). Commands for
infrastructure this machine cannot have (Kubernetes, AWS, Docker) sit in blocks marked
`<!-- not run here: reason -->`; they are listed with their reason and the files they name checked.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.docs_commands import documented_commands, normalise

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(3600),
]  # each test is a stretch of one user session: minutes, not the default 420 s
REPO = Path(__file__).resolve().parents[2]
LOOPBACK = ("127.0.0.1", "::1", "::ffff:127.0.0.1")
COVERED_BY_CI = {"make test": "this suite is what `make test` runs (CI calls it through .ci/run)"}
EXTERNAL_PREFIXES = (
    "kubectl ",
    "docker ",
    "openssl ",
    "ray up ",
    "ray down ",
    "ray exec ",
    "ray dashboard ",
    "ray get-auth-token ",
    "RAY_AUTH_MODE=token ray job submit",
    "monovec submit",
    "curl -s localhost",
)


@dataclass
class Run:
    command: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Project:
    """A copy of the repository a new user would have, and a shell with nothing exported."""

    def __init__(self, root: Path) -> None:
        self.root = root
        venv_bin = root / ".venv" / "bin"
        self.env = {
            "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
            "VIRTUAL_ENV": str(root / ".venv"),
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
        }
        self.runs: list[Run] = []

    def run(self, command: str, timeout: float = 900, ok: bool = True) -> Run:
        """`bash -c command` in the project folder; with `ok`, a non-zero exit fails the test with the output."""
        t0 = time.perf_counter()
        proc = subprocess.run(
            ["bash", "-c", command],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        run = Run(command, proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - t0)
        self.runs.append(run)
        print(f"[{run.seconds:6.1f}s] rc={run.returncode} {command}")
        if ok and run.returncode != 0:
            pytest.fail(
                f"`{command}` exited {run.returncode}\n--- stdout\n{run.stdout[-4000:]}\n--- stderr\n{run.stderr[-4000:]}"
            )
        return run

    @property
    def state(self) -> Path:
        return self.root / ".monovec"


def _copy_repository(dst: Path) -> None:
    """Tracked and new (not ignored) files, with their times (so `make` sees the venv as up to date)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout
    for rel in filter(None, listed.decode().split("\0")):
        src = REPO / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    (dst / ".venv").symlink_to(REPO / ".venv")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Project]:
    base = tmp_path_factory.mktemp("new_user")
    root = base / "monovec"
    root.mkdir()
    _copy_repository(root)
    (base / "shared").symlink_to(REPO.parent / "shared")
    proj = Project(root)
    yield proj
    proj.run("monovec serve down; monovec cluster down", ok=False, timeout=120)  # whatever a failed step left
    print("\n".join(f"{r.seconds:7.1f}s  {r.command[:110]}" for r in proj.runs))


# -------------------------------------------------------------------------------------- the journey
@dataclass(frozen=True)
class Step:
    command: str
    check: Callable[[Project, Run], None] | None = None
    timeout: float = 900


def expect(*fragments: str) -> Callable[[Project, Run], None]:
    def check(_: Project, run: Run) -> None:
        for fragment in fragments:
            assert fragment in run.output, f"`{run.command}`: expected {fragment!r} in\n{run.output[-3000:]}"

    return check


def _quickstart(p: Project, run: Run) -> None:
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    assert len(lines) <= 40, f"make quickstart printed {len(lines)} lines:\n" + "\n".join(lines)
    from wcwidth import wcswidth

    wide = [line for line in lines if wcswidth(line) > 100 and not line.startswith("logs:")]
    assert not wide, "lines wider than 100 columns:\n" + "\n".join(wide)
    assert any(line.startswith("decision: ") for line in lines), run.stdout
    assert any(line.startswith("experiment quickstart-") for line in lines), run.stdout
    assert "Traceback" not in run.output and "INFO" not in run.stdout
    log = next(line for line in lines if line.startswith("logs:")).split()[1]
    assert (p.root / log).is_file() or Path(log).is_file()


def _built(p: Project, run: Run) -> None:
    model_dir = Path(run.stdout.strip().splitlines()[-1])
    report = json.loads((model_dir / "report.json").read_text())
    assert "registered monovec-classifier version" in run.stdout
    # the full build learned (chance: 7-class macro-F1 ~0.14; "everything harmful" F1 ~0.6)
    emotion, safety = report["emotion"], report["safety"]
    assert emotion["en"]["pipeline"]["macro_f1"] > 0.45 and emotion["ko"]["pipeline"]["macro_f1"] > 0.35, (
        emotion
    )
    assert safety["kmhas_dev"]["all"]["harmful_block"]["f1"] > 0.75, safety["kmhas_dev"]["all"]
    assert safety["davidson_dev"]["en"]["harmful_not_allow"]["f1"] > 0.9, safety["davidson_dev"]["en"]


def _classified(_: Project, run: Run) -> None:
    assert run.stdout.startswith("decision: ") and "model loaded in" in run.stdout


def _predicted(p: Project, run: Run) -> None:
    lines = [json.loads(x) for x in (p.root / "out.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all(x["decision"] in ("allow", "block", "escalate") for x in lines)


def _evaluated(p: Project, run: Run) -> None:
    assert "using the newest of" in run.stderr and (p.state / "reports" / "latest" / "report.json").is_file()
    assert "emotion.en.pipeline.macro_f1" in run.stdout


CLASSIFIER = [
    Step(".venv/bin/monovec classifier build --config jobs/configs/classifier.yaml", _built, 1500),
    Step('.venv/bin/monovec classify "이 집 미친 듯이 맛있다"', _classified),
    Step(
        """printf '%s\\n' '{"text": "what a lovely surprise!"}' '{"text": "너무 슬퍼서 눈물이 나요"}' > in.jsonl"""
    ),
    Step(
        ".venv/bin/monovec classifier predict --model models:/monovec-classifier@candidate --input in.jsonl --output out.jsonl",
        _predicted,
    ),
    Step(".venv/bin/monovec classifier evaluate --model .monovec/models/monovec-classifier", _evaluated),
    Step(".venv/bin/monovec review list"),
]


class ListenerWatch:
    """Samples the listening sockets of every process of the local head while it runs."""

    def __init__(self, project: Project) -> None:
        self.project, self.seen, self.off_loopback = project, set(), set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _head(self) -> dict | None:
        path = self.project.state / "cluster" / "head.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def _loop(self) -> None:
        import psutil

        from monovec.cluster import our_processes

        while not self._stop.is_set():
            head = self._head()
            if head:
                pids = set()
                for proc in our_processes(head["temp_dir"], head.get("address")):
                    try:
                        pids |= {proc.pid, *(c.pid for c in proc.children(recursive=True))}
                    except psutil.NoSuchProcess:
                        continue
                pids.discard(os.getpid())
                for conn in psutil.net_connections(kind="inet"):
                    if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
                        where = (conn.laddr.ip, conn.laddr.port)
                        self.seen.add(where)
                        if conn.laddr.ip not in LOOPBACK:
                            try:  # name the process: "ray::ServeReplica:..." says more than a port
                                name = " ".join(psutil.Process(conn.pid).cmdline())[:80]
                            except psutil.Error:
                                name = f"pid {conn.pid}"
                            self.off_loopback.add((*where, name))
            self._stop.wait(0.5)


def _head_up(p: Project, run: Run) -> None:
    assert "Ray head up: address 127.0.0.1:6379" in run.stdout
    token = Path(p.env["HOME"]) / ".ray" / "auth_token"
    assert token.is_file() and token.stat().st_mode & 0o077 == 0, "the Ray token must be owner-only"
    submit = ".venv/bin/python -c \"from ray.job_submission import JobSubmissionClient as C; C('http://127.0.0.1:8265').list_jobs()\""
    wrong = p.run(f"RAY_AUTH_MODE=token RAY_AUTH_TOKEN=not-the-token {submit}", ok=False, timeout=120)
    assert wrong.returncode != 0 and "AuthenticationError" in wrong.stderr, (
        "the job server must refuse a wrong token"
    )


def _served(p: Project, run: Run) -> None:
    assert (
        "classifier app healthy at http://127.0.0.1:8000" in run.stdout
        and "experiment page: http://127.0.0.1:8000/" in run.stdout
    )
    http_contract("http://127.0.0.1:8000", p)


def http_contract(url: str, p: Project) -> None:
    """What a client of the shipped app sees: answers, stickiness, per-item batch errors, error shapes, admin auth."""
    with httpx.Client(base_url=url, timeout=60) as client:
        one = client.post(
            "/v1/classify", json={"text": "I am so happy for you!", "user_id": "new-user"}
        ).json()
        assert one["arm"] in ("control", "treatment") and one["decision"] in ("allow", "block", "escalate")
        for name, head in one["heads"].items():
            assert head["label"] in head["labels"] or not head["labels"], (name, head)
        assert {
            client.post("/v1/classify", json={"text": "hello", "user_id": "new-user"}).json()["arm"]
            for _ in range(5)
        } == {one["arm"]}
        forced = client.post(
            "/v1/classify",
            json={"text": "hello", "user_id": "new-user"},
            headers={"X-Monovec-Arm": "treatment"},
        )
        assert (
            forced.status_code == 403 and forced.json()["error"]["code"] == "arm_override_forbidden"
        )  # QA needs the token
        token = (p.state / "serve" / "admin_token").read_text().strip()
        forced = client.post(
            "/v1/classify",
            json={"text": "hello"},
            headers={"X-Monovec-Arm": "treatment", "Authorization": f"Bearer {token}"},
        )
        assert forced.json()["arm"] == "treatment"
        batch = client.post(
            "/v1/classify/batch", json={"texts": ["good", "", "좋아요"], "user_id": "new-user"}
        ).json()["results"]
        assert "heads" in batch[0] and batch[1]["error"]["code"] == "empty_text" and "heads" in batch[2]
        assert client.post(
            "/v1/feedback", json={"request_id": one["request_id"], "satisfied": True}
        ).json() == {"ok": True}
        for body, code in (
            (b"{nope", "malformed_json"),
            (b'{"text": "\xff"}', "invalid_utf8"),
            (b'{"text": ""}', "empty_text"),
        ):
            r = client.post("/v1/classify", content=body)
            assert r.status_code == 400 and r.json()["error"]["code"] == code, r.text
        assert (
            client.post("/v1/experiment/promote", headers={"Authorization": "Bearer wrong"}).status_code
            == 401
        )
        assert client.get("/").status_code == 200 and "text/html" in client.get("/").headers["content-type"]
        health = client.get("/healthz").json()
        assert health["status"] == "ok" and set(health["models"]) == {"control", "treatment"}


def _status(_: Project, run: Run) -> None:
    assert "control" in run.stdout and "treatment" in run.stdout and "recommended:" in run.stdout


def _action(*actions: str) -> Callable[[Project, Run], None]:
    def check(_: Project, run: Run) -> None:
        assert json.loads(run.stdout)["action"] in actions, run.stdout

    return check


HEAD = [
    Step(".venv/bin/monovec cluster up", _head_up, 300),
    Step("monovec cluster status", expect("running: 127.0.0.1:6379")),
    Step(
        ".venv/bin/monovec submit build_classifier --config jobs/configs/classifier.yaml",
        expect("SUCCEEDED"),
        1500,
    ),
    Step(
        "RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 --working-dir . -- python jobs/train_textvib.py --config jobs/configs/textvib_smoke.yaml",
        expect("succeeded", "model_dir="),
        900,
    ),
    Step(".venv/bin/monovec serve up", _served, 600),
    Step(
        """curl -s http://127.0.0.1:8000/v1/classify -H 'Content-Type: application/json' -d '{"text": "오늘 정말 행복해요", "user_id": "u1"}'""",
        expect('"decision"', '"heads"'),
    ),
    Step(".venv/bin/monovec experiment status", _status),
    Step("RAY_AUTH_MODE=token serve status", expect("classifier", "RUNNING")),
    Step(
        "monovec experiment evaluate",
        _action("continue_experiment", "rollback", "promote_to_production", "ramp"),
    ),
    Step("monovec experiment promote", _action("ramp", "promote_to_production")),
    Step("monovec experiment rollback", _action("rollback")),
    Step(
        "RAY_AUTH_MODE=token serve deploy serve_apps/classifier.yaml",
        expect("Sent deploy request successfully"),
    ),
    Step(".venv/bin/monovec serve down", expect("Serve shut down")),
    Step(".venv/bin/monovec cluster down", expect("stopped")),
]

TUNING = [
    Step(
        ".venv/bin/python jobs/tune.py --space tune_spaces/prototype_thresholds.yaml",
        expect("best_yaml="),
        1500,
    ),
    Step("monovec tune show .monovec/tune", expect("trials in", "using the newest of")),
    Step(
        ".venv/bin/monovec classifier build --from-tune .monovec/tune",
        expect("applying", "registered monovec-classifier version"),
        1500,
    ),
    Step(
        "python jobs/tune.py --space tune_spaces/textvib_loss_weights.yaml --config jobs/configs/tune_textvib.yaml --num-samples 4",
        expect("best_yaml="),
        1500,
    ),
]

TEXTVIB = [
    Step(
        "python jobs/train_textvib.py --config jobs/configs/textvib_smoke.yaml --out .monovec/textvib/runs/smoke",
        expect("model_dir="),
        600,
    ),
    Step(
        ".venv/bin/python jobs/train_textvib.py --config jobs/configs/textvib_cwru.yaml",
        expect("model_dir="),
        1500,
    ),
    Step(
        "monovec textvib evaluate --model .monovec/textvib/runs --data ../shared/data/cwru --out report.json",
        expect("average_accuracy=", "using the newest"),
    ),
    Step("monovec textvib ablate --config jobs/configs/textvib_smoke.yaml", expect("| +rkd |", "table: ")),
]

TASTE = [
    Step(
        ".venv/bin/monovec taste simulate --users 300 --events 20000 --write-events",
        expect("final prequential AUC"),
        1200,
    ),
    Step(
        "python jobs/update_taste2vec.py --config jobs/configs/taste2vec.yaml --events .monovec/taste-sim/events",
        expect('"learned"'),
        1200,
    ),
    Step(
        "monovec taste recommend --user u0001 --k 5 --hour 8 --weather rainy --temp 5 --mood 7",
        expect("arabica"),
    ),
]

ENCODER = [
    Step(
        ".venv/bin/python jobs/finetune_encoder.py --config jobs/configs/encoder_finetune_smoke.yaml",
        expect("model_dir=", "encoder=models:/monovec-encoder-smoke/1"),
        1200,
    ),
    Step(
        ".venv/bin/python jobs/tune.py --space tune_spaces/encoder_finetune.yaml --config jobs/configs/tune_encoder.yaml",
        expect("best_yaml="),
        1500,
    ),
]

OTHER = [
    Step("make quickstart", _quickstart, 1500),
    Step("python cluster/kuberay/render_rayservice.py --check"),
]
JOURNEY = OTHER + CLASSIFIER + HEAD + TUNING + TEXTVIB + TASTE + ENCODER


def _run_steps(project: Project, steps: list[Step]) -> None:
    for step in steps:
        run = project.run(step.command, timeout=step.timeout)
        if step.check is not None:
            step.check(project, run)


# ------------------------------------------------------------------------------------------ tests
def test_every_documented_command_is_in_the_journey() -> None:
    documented = documented_commands()
    journey = {normalise(s.command) for s in JOURNEY}
    runnable = [c for c in documented if c.not_run is None]
    missing = sorted(
        {
            f"{c.path}:{c.line}: {c.text}"
            for c in runnable
            if c.key not in journey and c.key not in COVERED_BY_CI
        }
    )
    assert not missing, "printed commands no test runs:\n" + "\n".join(missing)
    printed = {c.key for c in runnable}
    stale = sorted(s.command for s in JOURNEY if normalise(s.command) not in printed)
    assert not stale, "journey steps that no page prints any more:\n" + "\n".join(stale)
    for c in documented:
        if c.not_run is not None:  # infrastructure we do not have: only listed, but the files they name exist
            assert c.key.startswith(EXTERNAL_PREFIXES) or c.key.split()[0] in ("#",), (
                f"{c.path}:{c.line} marked not-run: {c.text}"
            )
            for word in shlex.split(c.text.replace("&", " "), comments=True):
                if word.startswith(("cluster/", "jobs/", "serve_apps/")):
                    assert (REPO / word.split("=")[-1]).exists(), (
                        f"{c.path}:{c.line} names {word}, which does not exist"
                    )


def test_quickstart_and_manifests(project: Project) -> None:
    _run_steps(project, OTHER)


def test_classifier_commands(project: Project) -> None:
    _run_steps(project, CLASSIFIER)


def test_head_serving_and_jobs_stay_on_loopback(project: Project) -> None:
    watch = ListenerWatch(project)
    watch.start()
    head = None
    try:
        for step in HEAD:
            run = project.run(step.command, timeout=step.timeout)
            if step.check is not None:
                step.check(project, run)
            head = head or watch._head()
    finally:
        watch.stop()
    assert head is not None, "cluster up wrote no head.json"
    assert watch.seen, "the watch saw no listener at all: it did not watch the head"
    assert not watch.off_loopback, f"listeners off loopback while the head ran: {sorted(watch.off_loopback)}"
    from monovec.cluster import our_processes

    left = [p for p in our_processes(head["temp_dir"], head.get("address")) if p.pid != os.getpid()]
    assert not left, f"Ray processes left after cluster down: {[' '.join(p.cmdline())[:120] for p in left]}"


def test_tuning_commands(project: Project) -> None:
    _run_steps(project, TUNING)


def test_textvib_commands(project: Project) -> None:
    _run_steps(project, TEXTVIB)


def test_taste_commands(project: Project) -> None:
    _run_steps(project, TASTE)


def test_encoder_commands(project: Project) -> None:
    _run_steps(project, ENCODER)
