"""Every cluster definition under cluster/ parses, has the keys its kind needs, and points at real files.

No Ray is started and no cluster is contacted: the launcher config is checked against the JSON schema
Ray's own launcher validates with, the KubeRay manifests against the fields the operator requires, the
RayService's serve config against serve_apps/classifier.yaml, and cluster/local/head.yaml against
LocalHeadConfig (including `monovec cluster up`, with the start itself replaced by a stub).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

CLUSTER = REPO / "cluster"
YAML_FILES = sorted(p for p in CLUSTER.rglob("*") if p.suffix in (".yaml", ".yml"))
RAY_KINDS = ("RayCluster", "RayJob", "RayService")
ENDPOINT_ENV = ("MLFLOW_TRACKING_URI", "MONOVEC_CHROMA_URL", "MONOVEC_DATA")
AUTH_SECRET = "monovec-ray-auth"
# repo paths a command can name: job entrypoints and configs, Serve apps, tune spaces, cluster files, docs
REPO_PATH = re.compile(r"(?<![\w./~$-])(?:jobs|serve_apps|tune_spaces|cluster|docs)/[\w./-]*\w")


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path}: top level must be a mapping"
    return data


def _kind(data: dict[str, Any]) -> str:
    if "apiVersion" in data:
        return data.get("kind", "?")
    if "provider" in data and "available_node_types" in data:
        return "launcher"
    if {"num_cpus", "dashboard_port"} & set(data):
        return "local-head"
    return "?"


def _by_kind(kind: str) -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p in YAML_FILES if _kind(d := _load(p)) == kind]


def _pins() -> dict[str, str]:
    lines = (REPO / "constraints.txt").read_text().splitlines()
    return dict(line.split("#")[0].strip().split("==") for line in lines if "==" in line.split("#")[0])


def _render_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "render_rayservice", CLUSTER / "kuberay" / "render_rayservice.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cluster_folder_has_every_definition() -> None:
    kinds = sorted(_kind(_load(p)) for p in YAML_FILES)
    assert "?" not in kinds, [p.name for p in YAML_FILES if _kind(_load(p)) == "?"]
    assert kinds == sorted(["local-head", "launcher", "RayCluster", "RayJob", "RayService"])


# ---------------------------------------------------------------- cluster launcher


def test_launcher_config_matches_rays_schema() -> None:
    import jsonschema

    ray_dir = Path(importlib.util.find_spec("ray").origin).parent  # type: ignore[union-attr]  # located, not imported
    schema = json.loads((ray_dir / "autoscaler" / "ray-schema.json").read_text())
    ((path, cfg),) = _by_kind("launcher")
    jsonschema.validate(cfg, schema)
    assert {"cluster_name", "provider", "available_node_types", "head_node_type"} <= set(cfg)
    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types
    assert sum(t.get("min_workers", 0) for t in types.values()) <= cfg["max_workers"]
    workers = {name: t for name, t in types.items() if name != cfg["head_node_type"]}
    for name, t in workers.items():
        assert t.get("min_workers", 0) <= t["max_workers"] <= cfg["max_workers"], name
    assert any(t["resources"].get("GPU", 0) >= 1 for t in workers.values()), "no GPU worker type"
    assert any(
        not t["resources"].get("GPU") and t["resources"].get("CPU", 0) >= 1 for t in workers.values()
    ), "no CPU worker type"


def test_launcher_installs_the_project_with_pinned_torch_and_token_auth() -> None:
    ((_, cfg),) = _by_kind("launcher")
    setup = "\n".join(cfg["setup_commands"])
    assert re.search(r"pip install (-q )?-c constraints\.txt -e \.", setup)
    assert f"torch=={_pins()['torch']}" in setup
    assert "." in cfg["file_mounts"].values(), "the repo must be synced to the nodes"
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = [c for c in cfg[key] if "ray start" in c]
        assert start and all("RAY_AUTH_MODE=token" in c for c in start), key
    everything = "\n".join(cfg["setup_commands"] + cfg["head_start_ray_commands"])
    for name in ENDPOINT_ENV:
        assert f"{name}=" in everything, name
    assert cfg["docker"]["image"].startswith(f"rayproject/ray:{_pins()['ray']}-")  # the Ray every node runs


# ---------------------------------------------------------------- KubeRay


def _ray_cluster_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]
    return {
        "RayCluster": spec,
        "RayJob": spec.get("rayClusterSpec"),
        "RayService": spec.get("rayClusterConfig"),
    }[doc["kind"]]


def _groups(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [("head", spec["headGroupSpec"]), *((g["groupName"], g) for g in spec["workerGroupSpecs"])]


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


KUBERAY = [(p, d) for p in YAML_FILES if (d := _load(p)).get("kind") in RAY_KINDS]


@pytest.mark.parametrize(("path", "doc"), KUBERAY, ids=[p.name for p, _ in KUBERAY])
def test_kuberay_manifest_structure(path: Path, doc: dict[str, Any]) -> None:
    assert doc["apiVersion"] == "ray.io/v1" and doc["metadata"]["name"]
    if doc["kind"] == "RayJob":
        assert isinstance(doc["spec"].get("entrypoint"), str) and doc["spec"]["entrypoint"].strip()
    if doc["kind"] == "RayService":
        assert isinstance(doc["spec"].get("serveConfigV2"), str) and isinstance(
            doc["spec"].get("rayClusterConfig"), dict
        )
    spec = _ray_cluster_spec(doc)
    assert spec["rayVersion"] == _pins()["ray"]
    assert spec.get("enableInTreeAutoscaling") is True
    assert spec["headGroupSpec"]["template"]["spec"]["containers"]
    assert spec["workerGroupSpecs"], "no worker groups"
    for name, group in _groups(spec):
        if name != "head":
            assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], name
            assert group["maxReplicas"] > group["minReplicas"], f"{name}: autoscaling needs room to grow"
        for c in group["template"]["spec"]["containers"]:
            assert c.get("image"), f"{name}: no image"
            for side in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][side]), f"{name}: {side}"
            env = _env(c)
            assert set(ENDPOINT_ENV) <= set(env), f"{name}: missing {set(ENDPOINT_ENV) - set(env)}"


@pytest.mark.parametrize(("path", "doc"), KUBERAY, ids=[p.name for p, _ in KUBERAY])
def test_kuberay_token_auth_comes_from_the_secret(path: Path, doc: dict[str, Any]) -> None:
    """Either KubeRay's authOptions (it injects the env) or explicit env on every Ray container."""
    spec = _ray_cluster_spec(doc)
    auth = spec.get("authOptions")
    containers = [c for _, g in _groups(spec) for c in g["template"]["spec"]["containers"]]
    if auth:
        assert auth == {"mode": "token", "secretName": AUTH_SECRET}
        assert not any("RAY_AUTH_TOKEN" in _env(c) or "RAY_AUTH_MODE" in _env(c) for c in containers), (
            "set twice"
        )
        return
    with_token = containers + ([spec["autoscalerOptions"]] if spec.get("enableInTreeAutoscaling") else [])
    for c in with_token:
        env = _env(c)
        assert env["RAY_AUTH_MODE"]["value"] == "token"
        assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {
            "name": AUTH_SECRET,
            "key": "auth_token",
        }


def _literal_token_env(node: Any) -> list[str]:
    """Names of env entries that look like a token and carry `value:` instead of `valueFrom:`."""
    if isinstance(node, list):
        return [name for item in node for name in _literal_token_env(item)]
    if not isinstance(node, dict):
        return []
    own = [node["name"]] if "TOKEN" in str(node.get("name", "")) and "value" in node else []
    return own + [name for v in node.values() for name in _literal_token_env(v)]


def test_secrets_are_referenced_never_inlined() -> None:
    for path in YAML_FILES:
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            assert doc.get("kind") != "Secret", f"{path}: Secrets are created with kubectl, never committed"
            assert not _literal_token_env(doc), (
                f"{path}: literal value for {_literal_token_env(doc)} (use valueFrom.secretKeyRef)"
            )


def _token_files() -> list[Path]:
    files = [p for p in CLUSTER.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return [*files, REPO / "docs" / "operations.md"]


def test_no_file_contains_an_auth_token() -> None:
    hexlike = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{32,}(?![0-9a-fA-F])")  # `ray get-auth-token` = 64 hex
    assigned = re.compile(r"RAY_AUTH_TOKEN=(?![\s\"']*\$)\S")  # a value, not "$(kubectl ...)" / "$VAR"
    real = [os.environ.get("RAY_AUTH_TOKEN", "")]
    token_file = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if token_file.is_file():
        real.append(token_file.read_text().strip())
    real = [t for t in real if len(t) >= 8]
    leaked: list[str] = []
    for path in _token_files():
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if hexlike.search(text) or assigned.search(text) or any(t in text for t in real):
            leaked.append(str(path.relative_to(REPO)))  # the file, never the value
    assert not leaked, f"token-like literal in {leaked}"


# ---------------------------------------------------------------- referenced paths


def _commands() -> list[tuple[str, str]]:
    """(where, command) for every entrypoint and shell command the definitions run."""
    out: list[tuple[str, str]] = []
    for path, doc in _by_kind("launcher"):
        for key in (
            "initialization_commands",
            "setup_commands",
            "head_setup_commands",
            "worker_setup_commands",
            "head_start_ray_commands",
            "worker_start_ray_commands",
        ):
            out += [(f"{path.name}:{key}", c) for c in doc.get(key, [])]
    for path, doc in _by_kind("RayJob"):
        out.append((f"{path.name}:entrypoint", doc["spec"]["entrypoint"]))
    return out


def test_every_path_a_command_or_comment_names_exists() -> None:
    """Entrypoints, commands and the commands shown in comments: `jobs/x.py`, `jobs/configs/x.yaml`, `serve_apps/...`."""
    sources = [(w, c) for w, c in _commands()] + [
        (str(p.relative_to(REPO)), p.read_text()) for p in YAML_FILES
    ]
    missing = sorted(
        {
            f"{where}: {m}"
            for where, text in sources
            for m in REPO_PATH.findall(text)
            if not (REPO / m).exists()
        }
    )
    assert not missing, "\n".join(missing)


def test_rayjob_entrypoint_runs_an_existing_job_with_its_config() -> None:
    for path, doc in _by_kind("RayJob"):
        argv = shlex.split(doc["spec"]["entrypoint"])
        assert argv[0] == "python" and argv[1].startswith("jobs/") and argv[1].endswith(".py"), argv
        config = argv[argv.index("--config") + 1]
        assert config.startswith("jobs/configs/") and config.endswith(".yaml")
        for rel in (argv[1], config):
            assert (REPO / rel).is_file(), f"{path.name}: {rel} does not exist"


def test_rayservice_import_paths_exist() -> None:
    render = _render_module()
    for _, doc in _by_kind("RayService"):
        for app in yaml.safe_load(doc["spec"]["serveConfigV2"])["applications"]:
            module, _, attr = app["import_path"].partition(":")
            assert module.startswith("monovec."), (
                f"{app['import_path']}: builders live in the installed library"
            )
            assert callable(getattr(importlib.import_module(module), attr)), app["import_path"]
    assert render.SOURCE.is_file()


# ---------------------------------------------------------------- RayService <-> serve_apps/classifier.yaml


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        return {k: v for key, val in node.items() for k, v in _flatten(val, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): node}


def test_rayservice_serves_exactly_serve_apps_classifier_yaml() -> None:
    render = _render_module()
    ((path, _),) = _by_kind("RayService")
    embedded = render.embedded_config(path.read_text(encoding="utf-8"))
    source = yaml.safe_load(render.SOURCE.read_text(encoding="utf-8"))
    assert embedded["applications"] == source["applications"]  # apps, models, args, autoscaling: verbatim
    assert embedded == render.serve_config()
    differs = {
        k
        for k in _flatten(embedded).keys() | _flatten(source).keys()
        if _flatten(embedded).get(k) != _flatten(source).get(k)
    }
    assert differs <= set(render.K8S_OVERRIDES), differs  # only what a pod needs (proxy host)


def test_render_check_detects_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    render = _render_module()
    manifest = tmp_path / "rayservice.yaml"
    manifest.write_text(render.MANIFEST.read_text(encoding="utf-8"), encoding="utf-8")
    assert render.main(["--check"], manifest=manifest) == 0  # the committed manifest is current

    source = tmp_path / "classifier.yaml"
    changed = yaml.safe_load(render.SOURCE.read_text(encoding="utf-8"))
    changed["applications"][0]["args"]["control"]["weight"] = 0.8
    source.write_text(yaml.safe_dump(changed), encoding="utf-8")
    assert render.main(["--check"], manifest=manifest, source=source) == 1
    assert "out of date" in capsys.readouterr().err
    assert render.main([], manifest=manifest, source=source) == 0  # rewrite ...
    assert render.embedded_config(manifest.read_text())["applications"][0]["args"]["control"]["weight"] == 0.8
    assert render.main(["--check"], manifest=manifest, source=source) == 0  # ... and it is current
    assert (
        yaml.safe_load(manifest.read_text())["spec"]["rayClusterConfig"]
        == yaml.safe_load(render.MANIFEST.read_text())["spec"]["rayClusterConfig"]
    )


# ---------------------------------------------------------------- local head


def test_local_head_yaml_is_what_cluster_up_uses() -> None:
    from monovec.cluster import DEFAULT_HEAD_CONFIG, LocalHeadConfig
    from monovec.config import load_config

    ((path, _),) = _by_kind("local-head")
    assert path == DEFAULT_HEAD_CONFIG == REPO / "cluster" / "local" / "head.yaml"
    cfg = load_config(LocalHeadConfig, path)
    assert (cfg.host, cfg.dashboard_port, cfg.auth) == ("127.0.0.1", 8265, True)
    assert LocalHeadConfig.load() == cfg
    flagged = LocalHeadConfig.load(num_cpus=4, dashboard_port=None, auth=None)  # None = flag not given
    assert (flagged.num_cpus, flagged.dashboard_port, flagged.auth) == (4, cfg.dashboard_port, True)


def test_local_head_config_errors_name_the_field(tmp_path: Path) -> None:
    from monovec.cluster import LocalHeadConfig
    from monovec.config import ConfigError

    bad = tmp_path / "head.yaml"
    bad.write_text("num_cpus: 2\ndashbord_port: 8265\n")
    with pytest.raises(ConfigError, match="dashbord_port"):
        LocalHeadConfig.load(bad)
    with pytest.raises(ConfigError, match="loopback"):
        LocalHeadConfig.load(host="0.0.0.0", auth=False)
    with pytest.raises(ConfigError, match="num_cpus"):
        LocalHeadConfig.load(num_cpus=0)


def test_cluster_up_reads_config_and_flags_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import monovec.cluster
    from monovec.cli import app

    started: list[Any] = []

    def fake_up(cfg: Any) -> dict[str, Any]:
        started.append(cfg)
        return {
            "address": f"{cfg.host}:{cfg.gcs_port}",
            "dashboard_url": f"http://{cfg.host}:{cfg.dashboard_port}",
            "auth": cfg.auth,
        }

    monkeypatch.setattr(monovec.cluster, "cluster_up", fake_up)
    own = tmp_path / "head.yaml"
    own.write_text("num_cpus: 3\ndashboard_port: 8299\ngcs_port: 6391\n")
    runner = CliRunner()

    res = runner.invoke(app, ["cluster", "up"])
    assert res.exit_code == 0, res.output
    assert started[-1] == monovec.cluster.LocalHeadConfig.load(CLUSTER / "local" / "head.yaml")

    res = runner.invoke(app, ["cluster", "up", "--config", str(own), "--dashboard-port", "8300", "--no-auth"])
    assert res.exit_code == 0, res.output
    assert (started[-1].num_cpus, started[-1].dashboard_port, started[-1].gcs_port, started[-1].auth) == (
        3,
        8300,
        6391,
        False,
    )
    assert "http://127.0.0.1:8300" in res.output and "token auth on" not in res.output

    res = runner.invoke(app, ["cluster", "up", "--config", str(tmp_path / "missing.yaml")])
    assert res.exit_code == 2 and "not found" in res.output and len(started) == 2
