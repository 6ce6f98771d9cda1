"""A sweep's outputs: best.yaml, trials.csv, top_trials.csv, pareto.csv, summary.json, two PNGs, MLflow.

`best.yaml` is what the next build reads: `overrides` maps config paths to the winning values, and
`monovec classifier build --from-tune DIR|best.yaml|RUN_ID` applies them on top of `base_config`.
MLflow gets one parent run per sweep (summary metrics, every file above as an artifact) and one
child run per trial (its parameters and metrics), logged from the driver after the sweep so the
sqlite store sees one writer. The parent run is opened when the sweep starts (`start_parent_run`) so
that a sweep resumed after its driver died goes on in the same run; `log_to_mlflow` is idempotent
(trials that already have a child run, and parameters already logged, are skipped), so a driver that
died while logging is finished by the rerun without duplicates.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from monovec.config import ConfigError, read_yaml
from monovec.tuning.objective import best_index, pareto_front

if TYPE_CHECKING:
    from monovec.tuning.config import TuneJobConfig
    from monovec.tuning.space import SearchSpace

HEADLINE = (
    "objective",
    "feasible",
    "decided_macro_f1",
    "escalation_rate",
    "coverage",
    "aurc",
    "macro_f1",
    "decided_rate",
)


@dataclass
class SweepResult:
    """A finished sweep: its folder, one row per trial, the summary, the best trial, the files written."""

    out_dir: Path
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    best: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)


def _plain(v: Any) -> Any:
    """numpy scalars -> Python (YAML/JSON safe)."""
    return v.item() if hasattr(v, "item") else v


def _short(key: str) -> str:
    return key.removeprefix("classifier.").removeprefix("heads.")


def columns(
    rows: Sequence[dict[str, Any]], params: Sequence[str], objective_cols: Sequence[str]
) -> list[str]:
    seen = ["trial", *dict.fromkeys(c for c in objective_cols if any(c in r for r in rows)), *params]
    rest = sorted({k for r in rows for k in r} - set(seen) - {"trial_id"})
    return [*seen, *rest, "trial_id"]


def write_csv(path: Path, rows: Sequence[dict[str, Any]], cols: Sequence[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(cols), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: _plain(r.get(k, "")) for k in cols})
    return path


def table(rows: Sequence[dict[str, Any]], cols: Sequence[str]) -> str:
    """Fixed-width text table (what the job prints at the end)."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4f}" if abs(v) < 1000 else f"{v:.3g}"
        return str(v)

    head = [_short(c) for c in cols]
    body = [[cell(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)


def plot_objective(
    rows: Sequence[dict[str, Any]],
    baseline: float,
    path: Path,
    mode: str,
    baseline_metric: tuple[str, float] | None = None,
) -> Path:
    """Objective per trial, the best so far and the untuned baseline. When some trials are over
    budget the y-axis keeps the feasible region readable: penalised trials are drawn at its
    bottom edge, and an infeasible baseline is shown by its unpenalised metric."""
    from monovec.plots import new_figure, save_figure

    xs = [r["trial"] for r in rows]
    ys = [r["objective"] for r in rows]
    ok = [r.get("feasible", 1.0) > 0 for r in rows]
    best, cur = [], None
    for y in ys:
        cur = y if cur is None or (y > cur if mode == "max" else y < cur) else cur
        best.append(cur)
    fig = new_figure(7.0, 4.5)
    ax = fig.add_subplot()
    feasible = [y for y, f in zip(ys, ok, strict=True) if f]
    clip = None
    if feasible and not all(ok):
        refs = [
            *feasible,
            *([baseline] if baseline in feasible else []),
            *([baseline_metric[1]] if baseline_metric else []),
        ]
        lo, hi = min(refs), max(refs)
        pad = max(0.005, (hi - lo) * 0.08)
        clip = (lo - 2 * pad, hi + pad)
    ax.scatter([x for x, f in zip(xs, ok, strict=True) if f], feasible, s=12, label="trial (within budget)")
    if not all(ok):
        bad_x = [x for x, f in zip(xs, ok, strict=True) if not f]
        bad_y = [y for y, f in zip(ys, ok, strict=True) if not f]
        if clip:
            bad_y = [max(y, clip[0] + (clip[1] - clip[0]) * 0.01) for y in bad_y]
        ax.scatter(
            bad_x,
            bad_y,
            s=14,
            marker="x",
            color="tab:red",
            label="over budget (penalised" + (", drawn at the edge)" if clip else ")"),
        )
    ax.step(
        xs,
        [max(b, clip[0]) if clip else b for b in best],
        where="post",
        color="tab:green",
        label="best so far",
    )
    if clip is None or clip[0] <= baseline <= clip[1]:
        ax.axhline(baseline, color="gray", linestyle="--", label=f"untuned defaults ({baseline:.4f})")
    elif baseline_metric is not None:
        ax.axhline(
            baseline_metric[1],
            color="gray",
            linestyle=":",
            label=f"untuned defaults' {baseline_metric[0]} {baseline_metric[1]:.4f} (over budget: objective {baseline:.3f})",
        )
    if clip:
        ax.set_ylim(*clip)
    ax.set_xlabel("trial (creation order; 0 = untuned defaults)")
    ax.set_ylabel("objective")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title("objective over trials")
    return save_figure(fig, path)


def plot_pareto(
    rows: Sequence[dict[str, Any]],
    front: Sequence[int],
    pairs: Sequence[tuple[str, str]],
    path: Path,
    budget: float | None,
) -> Path:
    from monovec.plots import new_figure, save_figure

    (ym, _), (xm, _) = pairs[0], pairs[1]
    fig = new_figure(6.5, 4.5)
    ax = fig.add_subplot()
    ax.scatter([r[xm] for r in rows], [r[ym] for r in rows], s=10, alpha=0.5, label="trials")
    pts = sorted((rows[i][xm], rows[i][ym]) for i in front)
    ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color="tab:orange", label="Pareto front")
    base = [r for r in rows if r["trial"] == 0]
    if base:
        ax.scatter(
            [base[0][xm]], [base[0][ym]], marker="*", s=160, color="black", label="untuned defaults", zorder=5
        )
    if budget is not None:
        ax.axvline(budget, color="gray", linestyle="--", label=f"budget {budget}")
    ax.set_xlabel(xm)
    ax.set_ylabel(ym)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Pareto front")
    return save_figure(fig, path)


BUILD_COMMANDS = {"classifier": "monovec classifier build", "textvib": "monovec textvib train"}
"""The command that applies a sweep's best.yaml, per target (`--from-tune`, see monovec.entry)."""


def write_outputs(
    out: Path,
    space: SearchSpace,
    job: TuneJobConfig,
    rows: list[dict[str, Any]],
    baseline: dict[str, Any],
    meta: dict[str, Any],
    progress: Callable[[str], None] = print,
) -> SweepResult:
    """Write a finished sweep's files under `out`: trials.csv, top_trials.csv, objective.png, best.yaml,
    summary.json (and pareto.csv / pareto.png for a multi-objective sweep), print the top trials.

    `rows` are the finished trials (their params, metrics and `objective`), `baseline` the untuned
    defaults' point, `meta` the runner's fields (name, base_config, baseline_objective/metrics, seconds,
    prepare_seconds, trials_per_minute). Returns the SweepResult (rows in trial order)."""
    obj = job.objective
    rows = sorted(rows, key=lambda r: r["trial"])
    params = list(space.params)
    obj_cols = [*HEADLINE, obj.metric, *([obj.budget_metric] if obj.budget_metric else [])]
    cols = columns(rows, params, obj_cols)
    best_row = rows[best_index([r["objective"] for r in rows], obj.mode)]
    ranked = sorted(
        range(len(rows)),
        key=lambda i: (
            -rows[i]["objective"] if obj.mode == "max" else rows[i]["objective"],
            rows[i]["trial"],
        ),
    )
    top = [rows[i] for i in ranked[: job.top_k]]
    files, front = _write_tables(out, job, rows, top, cols, meta)
    best = best_record(space, best_row, params, obj_cols, meta)
    files["best"] = write_best(out, space.target, best, meta)
    base_row = next((r for r in rows if all(r.get(k) == v for k, v in baseline.items())), None)
    summary = {
        **meta,
        "out_dir": str(out),
        "trials": len(rows),
        "feasible_trials": int(sum(r.get("feasible", 1.0) > 0 for r in rows)),
        "best_objective": best_row["objective"],
        "best_trial": best_row["trial"],
        "baseline_trial_objective": None if base_row is None else base_row["objective"],
        "improvement": best_row["objective"] - meta["baseline_objective"],
        "best_metrics": best["metrics"],
        "best_params": best["overrides"],
        "pareto_size": len(front),
        "objective_config": obj.model_dump(),
        "files": {k: str(v) for k, v in files.items()},
    }
    files["summary"] = out / "summary.json"
    files["summary"].write_text(json.dumps(summary, indent=2))
    _print_outcome(out, rows, top, cols, params, best_row, meta, files, progress)
    return SweepResult(out, rows, summary, best, files)


def _write_tables(
    out: Path,
    job: TuneJobConfig,
    rows: list[dict[str, Any]],
    top: list[dict[str, Any]],
    cols: list[str],
    meta: dict[str, Any],
) -> tuple[dict[str, Path], list[int]]:
    """trials.csv, top_trials.csv, the objective plot and, with 2+ objectives, the Pareto front (CSV + plot)."""
    obj = job.objective
    files = {
        "trials": write_csv(out / "trials.csv", rows, cols),
        "top_trials": write_csv(out / "top_trials.csv", top, cols),
    }
    pairs = obj.pareto_pairs()
    front: list[int] = []
    if len(pairs) >= 2:
        front = pareto_front(rows, pairs)
        files["pareto"] = write_csv(out / "pareto.csv", [rows[i] for i in front], cols)
        files["pareto_plot"] = plot_pareto(rows, front, pairs, out / "pareto.png", obj.budget)
    base_metric = meta["baseline_metrics"].get(obj.metric)
    files["objective_plot"] = plot_objective(
        rows,
        meta["baseline_objective"],
        out / "objective.png",
        obj.mode,
        None if base_metric is None else (obj.metric, float(base_metric)),
    )
    return files, front


def best_record(
    space: SearchSpace, best_row: dict[str, Any], params: list[str], obj_cols: list[str], meta: dict[str, Any]
) -> dict[str, Any]:
    """best.yaml's content: the winning trial's overrides with its and the defaults' metrics."""
    metric_keys = [k for k in dict.fromkeys(obj_cols) if k in best_row]
    return {
        "sweep": meta["name"],
        "target": space.target,
        "base_config": meta["base_config"],
        "trial": best_row["trial"],
        "objective": best_row["objective"],
        "baseline_objective": meta["baseline_objective"],
        "metrics": {k: _plain(best_row[k]) for k in metric_keys},
        "baseline_metrics": {
            k: _plain(meta["baseline_metrics"][k]) for k in metric_keys if k in meta["baseline_metrics"]
        },
        "overrides": {k: _plain(best_row[k]) for k in params},
    }


def write_best(out: Path, target: str, best: dict[str, Any], meta: dict[str, Any]) -> Path:
    """out/best.yaml, headed by the command that applies it for this target."""
    header = (
        f"# best trial of sweep {out.name}: objective {best['objective']:.4f} (untuned defaults {meta['baseline_objective']:.4f})\n"
        f"# apply it: {BUILD_COMMANDS.get(target, f'the {target} job')} --from-tune {out}   (overrides applied on top of {meta['base_config']})\n"
    )
    path = out / "best.yaml"
    path.write_text(header + yaml.safe_dump(best, sort_keys=False, allow_unicode=True))
    return path


def _print_outcome(
    out: Path,
    rows: list[dict[str, Any]],
    top: list[dict[str, Any]],
    cols: list[str],
    params: list[str],
    best_row: dict[str, Any],
    meta: dict[str, Any],
    files: dict[str, Path],
    progress: Callable[[str], None],
) -> None:
    shown = ["trial", *[c for c in (*HEADLINE[:6],) if c in cols], *params]
    progress(f"\ntop {len(top)} of {len(rows)} trials ({out / 'top_trials.csv'}):\n" + table(top, shown))
    progress(
        f"\nuntuned defaults: objective {meta['baseline_objective']:.4f} | best: objective {best_row['objective']:.4f} (trial {best_row['trial']}) | "
        f"{len(rows)} trials{f' ({n} resumed, {len(rows) - n} run now)' if (n := meta.get('resumed_trials', 0)) else ''} in {meta['seconds']:.0f}s "
        f"({meta['trials_per_minute']:.0f}/min) + {meta['prepare_seconds']:.0f}s preparation\n"
        f"best.yaml: {files['best']}"
    )


def start_parent_run(out: Path, space: SearchSpace, job: TuneJobConfig, resume_id: str | None = None) -> str:
    """The sweep's MLflow parent run (status RUNNING until `log_to_mlflow` ends it): `resume_id` when that
    run still exists and is not deleted (a resumed sweep continues it), else a new run."""
    from monovec.tracking.mlflow_store import experiment_id, mlflow_client

    _, client, uri = mlflow_client(job.tracking.uri)
    if resume_id:
        try:
            run = client.get_run(resume_id)
        except Exception:  # noqa: BLE001 - deleted for good, or another store: open a new parent
            run = None
        if run is not None and run.info.lifecycle_stage == "active":
            client.set_tag(resume_id, "monovec.resumed", "true")
            return resume_id
    exp_id = experiment_id(client, uri, job.tracking.experiment)
    parent = client.create_run(
        exp_id,
        run_name=f"sweep-{out.name}",
        tags={"monovec.kind": "tune-sweep", "monovec.target": space.target, "monovec.out_dir": str(out)},
    )
    return parent.info.run_id


def log_to_mlflow(
    result: SweepResult,
    space: SearchSpace,
    job: TuneJobConfig,
    space_path: str | None,
    parent_id: str | None = None,
) -> str:
    """Parent run (summary + artifacts) with one child run per trial; returns the parent run id.

    `parent_id` is the run `start_parent_run` opened; child runs that exist already (tag
    `monovec.trial_id`) and parameters already set are not logged again."""
    from mlflow.entities import Metric, Param, RunTag

    from monovec.tracking.mlflow_store import experiment_id, mlflow_client, sanitise

    _, client, uri = mlflow_client(job.tracking.uri)
    exp_id = experiment_id(client, uri, job.tracking.experiment)
    s = result.summary
    pid = parent_id or start_parent_run(result.out_dir, space, job)
    logged_params = client.get_run(pid).data.params
    logged_trials = {
        r.data.tags.get("monovec.trial_id")
        for r in client.search_runs(
            [exp_id], filter_string=f"tags.mlflow.parentRunId = '{pid}'", max_results=50_000
        )
    }
    now = int(time.time() * 1000)

    def metrics_of(d: dict[str, Any]) -> list[Metric]:
        return [
            Metric(sanitise(k), float(v), now, 0)
            for k, v in d.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))
        ]

    params = {
        "space": space.name,
        "target": space.target,
        "algorithm": job.search.algorithm,
        "num_samples": job.search.num_samples,
        "max_concurrent": job.search.max_concurrent,
        "seed": job.search.seed,
        "objective.metric": job.objective.metric,
        "objective.budget_metric": job.objective.budget_metric,
        "objective.budget": job.objective.budget,
        "objective.pareto": job.objective.pareto,
        "base_config": s["base_config"],
    }
    params.update({f"best.{k}": v for k, v in s["best_params"].items()})
    summary_metrics = {
        k: s[k]
        for k in (
            "baseline_objective",
            "best_objective",
            "improvement",
            "trials",
            "feasible_trials",
            "seconds",
            "prepare_seconds",
            "trials_per_minute",
            "pareto_size",
        )
    }
    summary_metrics.update({f"best.{k}": v for k, v in s["best_metrics"].items()})
    summary_metrics.update(
        {f"baseline.{k}": v for k, v in s["baseline_metrics"].items() if k in s["best_metrics"]}
    )
    client.log_batch(
        pid,
        metrics=metrics_of(summary_metrics),
        params=[
            Param(sanitise(k)[:250], str(v)[:500])
            for k, v in params.items()
            if sanitise(k)[:250] not in logged_params
        ],
    )
    for row in result.rows:
        if row["trial_id"] in logged_trials:
            continue
        child = client.create_run(
            exp_id,
            run_name=f"trial-{row['trial']:03d}",
            tags={"mlflow.parentRunId": pid, "monovec.trial_id": row["trial_id"]},
        )
        cid = child.info.run_id
        client.log_batch(
            cid,
            metrics=metrics_of({k: v for k, v in row.items() if k not in space.params and k != "trial"}),
            params=[Param(sanitise(k)[:250], str(_plain(row[k]))[:500]) for k in space.params],
            tags=[
                RunTag("monovec.trial", str(row["trial"])),
                RunTag("monovec.best", str(row["trial"] == s["best_trial"]).lower()),
            ],
        )
        client.set_terminated(cid)
    for f in result.files.values():
        client.log_artifact(pid, str(f))
    if space_path:
        client.log_artifact(pid, space_path)
    (result.out_dir / "tune_config.yaml").write_text(
        yaml.safe_dump(job.model_dump(mode="json"), sort_keys=False)
    )
    client.log_artifact(pid, str(result.out_dir / "tune_config.yaml"))
    client.set_terminated(pid)
    return pid


def load_best(ref: str | Path, tracking_uri: str | None = None) -> dict[str, Any]:
    """A sweep's best.yaml from a file, a sweep directory, a folder of sweeps (the newest: `_note` says
    which), or the MLflow run id of the sweep. Raises ConfigError naming what was looked for."""
    path = Path(ref)
    note = None
    if path.is_dir() and not (path / "best.yaml").is_file():
        sweeps = [p / "best.yaml" for p in path.iterdir() if (p / "best.yaml").is_file()]
        if sweeps:
            newest = max(sweeps, key=lambda p: (p.stat().st_mtime_ns, str(p)))
            note = f"using the newest of {len(sweeps)} sweeps in {path}: {newest.parent}"
            path = newest.parent
    if path.is_dir():
        path = path / "best.yaml"
    if not path.is_file():
        if Path(ref).exists() or "/" in str(ref) or str(ref).endswith((".yaml", ".yml")):
            raise ConfigError(f"no best.yaml at {path}")
        import mlflow

        from monovec.tracking.mlflow_store import tracking_uri as resolve_uri

        try:
            path = Path(
                mlflow.artifacts.download_artifacts(
                    run_id=str(ref), artifact_path="best.yaml", tracking_uri=resolve_uri(tracking_uri)
                )
            )
        except Exception as exc:  # unknown run, or a run without best.yaml
            raise ConfigError(
                f"{ref!r} is neither a best.yaml, a sweep directory nor an MLflow sweep run with best.yaml ({exc})"
            ) from exc
    best = read_yaml(path)
    if "overrides" not in best and best and all("." in str(k) for k in best):  # a bare {path: value} mapping
        best = {"overrides": best}
    if not isinstance(best.get("overrides"), dict):
        raise ConfigError(f"{path}: no `overrides` mapping")
    best["_path"] = str(path)
    if note:
        best["_note"] = note
    return best
