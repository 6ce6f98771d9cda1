"""The library's module graph: no import cycles (imports inside functions count), no upward imports.

A cycle hidden by an import inside a function still couples two modules both ways: neither can be
understood, tested or moved alone. The graph is read from the source with `ast` (nothing imported),
over every `import` and `from ... import` in `platform/monovec`, at any depth.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "platform"
PACKAGE = ROOT / "monovec"
FORBIDDEN = ("jobs", "serve_apps", "tests", "bench", "cluster")


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path, name: str, known: set[str]) -> tuple[set[str], set[str]]:
    """(monovec modules imported anywhere in the file, imports of forbidden top-level packages)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found, forbidden = set(), set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for t in targets:
            if t.split(".")[0] in FORBIDDEN:
                forbidden.add(t)
            while t and t not in known:  # `monovec.a.b.func` -> the module `monovec.a.b`
                t = t.rsplit(".", 1)[0] if "." in t else ""
            if t and t != name and t.startswith("monovec"):
                found.add(t)
    return found, forbidden


def graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    mods = modules()
    edges, upward = {}, {}
    for name, path in mods.items():
        edges[name], bad = imports_of(path, name, set(mods))
        if bad:
            upward[name] = bad
    return edges, upward


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            # a package's __init__ importing its own submodules is how packages re-export, not a cycle
            if v == w.rsplit(".", 1)[0] and not edges.get(w, set()) & {v}:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_graph_reader_sees_imports_inside_functions(tmp_path: Path) -> None:
    src = "def f():\n    from monovec.b import g\n    import monovec.c\n"
    (tmp_path / "a.py").write_text(src)
    found, _ = imports_of(tmp_path / "a.py", "monovec.a", {"monovec.a", "monovec.b", "monovec.c"})
    assert found == {"monovec.b", "monovec.c"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_in_the_library() -> None:
    found = cycles(graph()[0])
    assert not found, "import cycles (imports inside functions included):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


@pytest.mark.parametrize("top", FORBIDDEN)
def test_the_library_never_imports_entrypoints_or_tests(top: str) -> None:
    upward = {m: sorted(t for t in ts if t.split(".")[0] == top) for m, ts in graph()[1].items()}
    upward = {m: ts for m, ts in upward.items() if ts}
    assert not upward, f"library modules import {top}/: {upward}"


def _touches_import_paths(path: Path) -> bool:
    """`sys.path` used in code, or a `PYTHONPATH` string outside docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "path"
            and isinstance(node.value, ast.Name)
            and node.value.id == "sys"
        ):
            return True
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "PYTHONPATH" in node.value
            and id(node) not in docstrings
        ):
            return True
    return False


def test_no_path_tricks_in_the_library() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py") if _touches_import_paths(p)]
    assert not offenders, f"sys.path / PYTHONPATH manipulation in {offenders}"


def test_one_class_per_infrastructure_block() -> None:
    """`RayConfig`, `ScalingConfig` and `TrackingConfig` are defined once (monovec/infra.py), and every
    job config's `ray`, `scaling` and `tracking` blocks are those classes."""
    from monovec.classify.build import BuildConfig
    from monovec.finetune.config import FinetuneConfig
    from monovec.infra import RayConfig, ScalingConfig, TrackingConfig
    from monovec.taste.config import Taste2VecJobConfig
    from monovec.textvib.config import TextVibConfig
    from monovec.tuning.config import TuneJobConfig

    shared = {"ray": RayConfig, "scaling": ScalingConfig, "tracking": TrackingConfig}
    defined = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.ClassDef)
                and any(w in node.name for w in ("Ray", "Scaling", "Tracking"))
                and node.name.endswith("Config")
            ):
                defined.setdefault(node.name, []).append(module_name(path))
    assert defined == {c.__name__: ["monovec.infra"] for c in shared.values()}, defined
    for job in (BuildConfig, FinetuneConfig, Taste2VecJobConfig, TextVibConfig, TuneJobConfig):
        for key, cls in shared.items():
            if key in job.model_fields:
                assert job.model_fields[key].annotation is cls, f"{job.__name__}.{key}"
        assert {"ray", "tracking"} <= set(job.model_fields), job.__name__
