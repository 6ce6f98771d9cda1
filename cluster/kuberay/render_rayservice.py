"""Regenerate the serveConfigV2 block of rayservice-classifier.yaml from serve_apps/classifier.yaml.

    python cluster/kuberay/render_rayservice.py           # rewrite the block in place
    python cluster/kuberay/render_rayservice.py --check   # exit 1 when the manifest is out of date

`serve deploy serve_apps/classifier.yaml` and the RayService must run the same app with the same
arguments, so the manifest never carries a hand-edited copy: this script owns the lines between the
`# BEGIN serveConfigV2` / `# END serveConfigV2` markers and leaves the rest of the manifest alone.
The embedded config is the source parsed and dumped again, with the changes a pod needs listed in
K8S_OVERRIDES and nothing else: a proxy bound to 127.0.0.1 (the safe local default) is unreachable
through the Kubernetes Service, so the pod binds it to its own interface.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "serve_apps" / "classifier.yaml"
MANIFEST = Path(__file__).resolve().with_name("rayservice-classifier.yaml")
BEGIN = "# BEGIN serveConfigV2"
END = "# END serveConfigV2"
KEY = "serveConfigV2: |"
# dotted path in the Serve config -> value inside a pod
K8S_OVERRIDES: dict[str, Any] = {"http_options.host": "0.0.0.0"}


def serve_config(source: Path = SOURCE) -> dict[str, Any]:
    """The Serve config the RayService must run: the source file with K8S_OVERRIDES applied."""
    config = copy.deepcopy(yaml.safe_load(source.read_text(encoding="utf-8")))
    for dotted, value in K8S_OVERRIDES.items():
        *parents, leaf = dotted.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return config


def render(manifest: str, config: dict[str, Any], source_name: str = "serve_apps/classifier.yaml") -> str:
    """`manifest` with the lines between the markers replaced by `config` as a block scalar."""
    lines = manifest.splitlines(keepends=True)
    begin = [i for i, line in enumerate(lines) if line.lstrip().startswith(BEGIN)]
    end = [i for i, line in enumerate(lines) if line.lstrip().startswith(END)]
    if len(begin) != 1 or len(end) != 1 or end[0] < begin[0]:
        raise ValueError(f"expected one {BEGIN!r} line followed by one {END!r} line")
    indent = lines[begin[0]][: len(lines[begin[0]]) - len(lines[begin[0]].lstrip())]
    changed = ", ".join(f"{k}: {v}" for k, v in K8S_OVERRIDES.items())
    body = f"# from {source_name} (render_rayservice.py); for Kubernetes: {changed}\n"
    body += yaml.safe_dump(config, sort_keys=False, default_flow_style=None, allow_unicode=True, width=110)
    block = [f"{indent}{KEY}\n", *(f"{indent}  {line}\n" if line else "\n" for line in body.splitlines())]
    return "".join([*lines[: begin[0] + 1], *block, *lines[end[0] :]])


def embedded_config(manifest: str) -> dict[str, Any]:
    """The serveConfigV2 of a RayService manifest, parsed."""
    return yaml.safe_load(yaml.safe_load(manifest)["spec"]["serveConfigV2"])


def _show(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def main(argv: list[str] | None = None, manifest: Path = MANIFEST, source: Path = SOURCE) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the manifest is out of date, change nothing"
    )
    args = parser.parse_args(argv)
    current = manifest.read_text(encoding="utf-8")
    wanted = render(current, serve_config(source), _show(source))
    if current == wanted:
        print(f"{_show(manifest)} is up to date with {_show(source)}")
        return 0
    if args.check:
        print(
            f"{_show(manifest)} is out of date with {_show(source)}: run python {_show(Path(__file__).resolve())}",
            file=sys.stderr,
        )
        return 1
    manifest.write_text(wanted, encoding="utf-8")
    print(f"rewrote serveConfigV2 in {_show(manifest)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
