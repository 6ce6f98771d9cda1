"""Run one sweep: prepare once, `ray.put` once, let a search algorithm drive function trials.

    space + job config -> target.prepare (embed/fit once) -> ray.put
        -> tune.Tuner(trial, TuneConfig(search_alg=ConcurrencyLimiter(OptunaSearch(...)))) -> rows
        -> report.write_outputs (best.yaml, trials.csv, summary.json, plots) -> MLflow parent/child runs

The untuned defaults (the base config's values of every space key) are the first point every
search algorithm evaluates, so `best_objective >= baseline_objective` holds by construction; the
driver also scores the defaults itself on the same data (`baseline_objective` in summary.json).

Rerunning on the `--out` of a sweep whose driver died resumes it (`monovec.tuning.resume`):
`tune.Tuner.restore` continues the experiment (finished trials kept, unfinished ones rerun, the
searcher's saved state reloaded, so the search goes on instead of starting over), the MLflow parent run
is continued, and the outputs are built from Tune's experiment state, so they cover every trial.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monovec.config import ConfigError, load_config
from monovec.paths import REPO_ROOT, state_dir
from monovec.tuning.config import TuneJobConfig
from monovec.tuning.objective import ObjectiveConfig, score
from monovec.tuning.report import SweepResult
from monovec.tuning.space import SearchSpace, check_space, get_path, grid_size, to_optuna, to_tune
from monovec.tuning.targets import config_model, runtime, target_spec

log = logging.getLogger(__name__)


@dataclass
class TrialReporter:
    """The `report` a target gets: scores metrics and sends them on (default `ray.tune.report`).
    Picklable, so a target can ship `.scored` into a nested Ray Train controller's callback."""

    objective: ObjectiveConfig
    sink: Callable[[dict[str, Any]], None] | None = None

    def scored(self, m: dict[str, Any]) -> dict[str, Any]:
        return {**m, **score(m, self.objective)}

    def __call__(self, m: dict[str, Any]) -> None:
        if self.sink is None:
            from ray import tune

            tune.report(self.scored(m))
        else:
            self.sink(self.scored(m))


def make_trainable(
    target: str, data_ref: Any, base: dict[str, Any], objective: ObjectiveConfig
) -> Callable[[dict[str, Any]], None]:
    """A plain function trainable: fetch the shared data (zero-copy), score, report.

    The fetched data is kept in `fetched`, which the trainable owns: Tune deserialises the trainable once
    per trial actor, so a reused actor fetches the data once, not once per trial."""
    fetched: dict[str, Any] = {}

    def trial(config: dict[str, Any]) -> None:
        import ray

        if "data" not in fetched:
            fetched["data"] = ray.get(data_ref)
        runtime(target).run_trial(fetched["data"], base, config, TrialReporter(objective))

    trial.__name__ = f"{target}_trial"
    return trial


def resolve_base(job: TuneJobConfig, space: SearchSpace) -> tuple[Any, dict[str, Any], str]:
    spec = target_spec(space.target)
    path = job.base_config or spec.default_base_config
    if not Path(path).is_file() and (REPO_ROOT / path).is_file():
        path = str(REPO_ROOT / path)
    base = load_config(config_model(space.target), path, job.base_overrides)
    return base, base.model_dump(mode="json"), path


def baseline_point(space: SearchSpace, base: dict[str, Any]) -> dict[str, Any]:
    """The base config's value of every space key: the untuned defaults, evaluated first."""
    point = {}
    for key, spec in space.params.items():
        value = get_path(base, key)
        if not spec.contains(value):
            log.warning(
                "baseline %s=%r lies outside the space; the search cannot enqueue it exactly", key, value
            )
        point[key] = value
    return point


def expected_trials(job: TuneJobConfig, space: SearchSpace) -> int:
    """Trials the sweep will run (the baseline included)."""
    s = job.search
    if s.algorithm == "grid":
        return grid_size(space, s.grid_points) + 1
    if s.algorithm == "random":  # `grid` entries are crossed with every random sample (Ray's semantics)
        crossed = math.prod(len(p.values or []) for p in space.params.values() if p.type == "grid")
        return 1 + (s.num_samples - 1) * crossed
    return s.num_samples


def search_algorithm(
    job: TuneJobConfig, space: SearchSpace, baseline: dict[str, Any]
) -> tuple[Any, dict[str, Any], int]:
    """(search_alg, param_space, num_samples) for the configured algorithm; the baseline is its first point."""
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

    s, obj = job.search, job.objective
    if s.algorithm == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        pairs = obj.pareto_pairs() if obj.pareto else [("objective", obj.mode)]
        sampler = optuna.samplers.TPESampler(seed=s.seed)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        searcher = OptunaSearch(
            space=to_optuna(space),
            metric=[m for m, _ in pairs] if len(pairs) > 1 else pairs[0][0],
            mode=[m for _, m in pairs] if len(pairs) > 1 else pairs[0][1],
            points_to_evaluate=[baseline],
            sampler=sampler,
        )
        return ConcurrencyLimiter(searcher, max_concurrent=s.max_concurrent), {}, s.num_samples
    if s.algorithm == "grid":
        size = grid_size(space, s.grid_points)
        if size > s.num_samples:
            raise ConfigError(
                f"grid has {size} points (grid_points={s.grid_points}) but num_samples={s.num_samples}; narrow the space or raise --num-samples"
            )
        gen = BasicVariantGenerator(
            points_to_evaluate=[baseline], max_concurrent=s.max_concurrent, random_state=s.seed
        )
        return (
            gen,
            to_tune(space, grid_points=s.grid_points),
            2,
        )  # sample 1 = the baseline point, sample 2 = one pass over the grid
    gen = BasicVariantGenerator(
        points_to_evaluate=[baseline], max_concurrent=s.max_concurrent, random_state=s.seed
    )
    return gen, to_tune(space), s.num_samples  # the baseline point counts as the first sample


def _scheduler(job: TuneJobConfig, max_t: int = 100) -> Any:
    """ASHA on the per-iteration `objective` (iterations = the target's reports, e.g. epochs)."""
    if job.search.scheduler == "fifo":
        return None
    if job.objective.pareto:
        raise ConfigError("scheduler asha needs a single objective (unset objective.pareto)")
    from ray.tune.schedulers import ASHAScheduler

    s = job.search
    return ASHAScheduler(
        time_attr="training_iteration",
        metric="objective",
        mode=job.objective.mode,
        max_t=max_t,
        grace_period=min(s.grace_period, max_t),
        reduction_factor=s.reduction_factor,
    )


def saved_trials(experiment: Path) -> list:
    """The trials in Tune's saved experiment state (`ExperimentAnalysis(...).trials`: status, config, last result).

    Tune warns for every trial without result files yet (those running at a kill): expected here, so quiet."""
    from ray import tune

    analysis_log = logging.getLogger("ray.tune.analysis.experiment_analysis")
    level = analysis_log.level
    analysis_log.setLevel(logging.ERROR)
    try:
        return tune.ExperimentAnalysis(str(experiment)).trials
    finally:
        analysis_log.setLevel(level)


def _restore(experiment: Path, trainable: Any, param_space: dict[str, Any], callbacks: list) -> Any:
    """`Tuner.restore` of a dead sweep: finished trials kept, unfinished ones run again, errored ones left
    errored; this driver's `callbacks` (progress, and the fault switches of its own config) replace the ones
    pickled in tuner.pkl."""
    from ray import tune

    tuner = tune.Tuner.restore(
        str(experiment),
        trainable,
        resume_unfinished=True,
        resume_errored=False,
        restart_errored=False,
        param_space=param_space,
    )
    # No public accessor for a restored Tuner's RunConfig (ray-project/ray#41364); fit() reads its callbacks.
    tuner._local_tuner.get_run_config().callbacks = callbacks
    return tuner


@dataclass
class SweepPlan:
    """Everything a sweep is decided by, checked before any Ray work (`plan_sweep`)."""

    job: TuneJobConfig
    space: SearchSpace
    space_path: str | None
    base: Any
    base_dict: dict[str, Any]
    base_path: str
    name: str
    stamp: str
    out: Path
    record: Any  # SweepRecord of the unfinished sweep being resumed, None for a fresh one
    baseline: dict[str, Any]
    search_alg: Any
    param_space: dict[str, Any]
    num_samples: int
    total: int
    max_t: int
    scheduler: Any


def plan_sweep(job: TuneJobConfig, space: SearchSpace, space_path: str | None = None) -> SweepPlan:
    """Validate the sweep and decide its folder, base config, baseline, search algorithm and scheduler.

    Needs no Ray: an entrypoint calls it before starting Ray, so a bad space, config or a finished
    `--out` costs no cluster. Raises ConfigError naming the problem (a finished sweep in `out_dir` too)."""
    from monovec.tuning.resume import check_rerun

    check_space(space, config_model(space.target))
    base, base_dict, base_path = resolve_base(job, space)
    name = job.name or space.name
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    out = Path(job.out_dir) if job.out_dir else state_dir() / "tune" / f"{name}-{stamp}"
    record = check_rerun(out, job, space)  # None: a fresh sweep; raises for a finished or changed one
    baseline = baseline_point(space, base_dict)
    search_alg, param_space, num_samples = search_algorithm(job, space, baseline)
    max_t = runtime(space.target).max_iterations(base_dict, space.params)
    return SweepPlan(
        job,
        space,
        space_path,
        base,
        base_dict,
        base_path,
        name,
        stamp,
        out,
        record,
        baseline,
        search_alg,
        param_space,
        num_samples,
        expected_trials(job, space),
        max_t,
        _scheduler(job, max_t),
    )


def run_sweep(
    job: TuneJobConfig,
    space: SearchSpace,
    space_path: str | None = None,
    progress: Callable[[str], None] = print,
    plan: SweepPlan | None = None,
) -> SweepResult:
    """Run a sweep into `job.out_dir` (default `<state dir>/tune/<name>-<UTC time>`), or resume the
    unfinished one there, on the Ray the entrypoint started (`monovec.entry.start_ray`, with the dashboard).

    Args: the job config, the search space (and its file, recorded in the outputs), a progress printer,
    and the `plan_sweep` result when the caller already planned. Returns the SweepResult (rows sorted
    best first, files best.yaml / trials.csv / summary.json / plots, summary with seconds and trials per
    minute). Raises ConfigError for a bad sweep or a finished `out_dir`, RuntimeError when Ray is not
    running or no trial finished."""
    import ray

    from monovec.tuning.progress import finished_rows

    t_start = time.perf_counter()
    plan = plan or plan_sweep(job, space, space_path)
    if not ray.is_initialized():
        raise RuntimeError(
            "run_sweep needs Ray: the entrypoint starts it (monovec.entry.start_ray(job.ray, dashboard=True))"
        )
    plan.out.mkdir(parents=True, exist_ok=True)
    target = runtime(space.target)
    data, prepare_s, base_metrics = _prepare(plan, target, progress)
    data_ref = ray.put(data)
    tuner, record, experiment, done, callback = _tuner(plan, target, data, data_ref, base_metrics, progress)
    t_sweep = time.perf_counter()
    try:
        grid = tuner.fit()
    finally:
        target.close(data)
    sweep_s = time.perf_counter() - t_sweep
    rows = finished_rows(saved_trials(experiment), list(space.params))  # every trial, resumed ones too
    if not rows:
        raise RuntimeError(f"no trial finished ({len(grid.errors)} errors): {grid.errors[:1]}")
    meta = _meta(plan, target, rows, grid, record, base_metrics, callback, done, prepare_s, sweep_s, progress)
    return _finish(plan, record, rows, meta, t_start, progress)


def _prepare(
    plan: SweepPlan, target: Any, progress: Callable[[str], None]
) -> tuple[Any, float, dict[str, float]]:
    """(the target's prepared data, seconds it took, the untuned defaults' metrics: measured now or kept)."""
    job, name, record = plan.job, plan.name, plan.record
    options = getattr(job, target_spec(plan.space.target).options_field)
    progress(
        f"[{name}] preparing {plan.space.target} data once (embeddings from the cache, heads fitted once) ..."
    )
    t_prepare = time.perf_counter()
    data = target.prepare(plan.base, options, progress)
    prepare_s = time.perf_counter() - t_prepare
    base_metrics: dict[str, float] = dict(record.baseline_metrics) if record else {}
    if not base_metrics:
        target.run_trial(
            data, plan.base_dict, plan.baseline, TrialReporter(job.objective, base_metrics.update)
        )
    progress(
        f"[{name}] untuned defaults{' (measured when the sweep started)' if record else ''}: objective={base_metrics['objective']:.4f} {job.objective.metric}={base_metrics.get(job.objective.metric, float('nan')):.4f}"
        + (
            f" {job.objective.budget_metric}={base_metrics[job.objective.budget_metric]:.4f} (budget {job.objective.budget})"
            if job.objective.budget_metric
            else ""
        )
    )
    return data, prepare_s, base_metrics


def _tuner(
    plan: SweepPlan,
    target: Any,
    data: Any,
    data_ref: Any,
    base_metrics: dict[str, float],
    progress: Callable[[str], None],
) -> tuple[Any, Any, Path, list, Any]:
    """A fresh Tuner, or the restored one of a dead driver's sweep; the sweep record written (and the
    MLflow parent run started) before anything else can die. Returns (tuner, record, experiment dir,
    rows of trials finished before a resume, progress callback)."""
    from ray import tune

    from monovec.tuning.progress import ProgressCallback, StepDelayCallback, finished_rows
    from monovec.tuning.report import start_parent_run
    from monovec.tuning.resume import SweepRecord, job_fingerprint, saved_state_problem

    job, space, name, out, record = plan.job, plan.space, plan.name, plan.out, plan.record
    params = list(space.params)
    experiment = (out / (record.experiment if record else f"ray/{name}-{plan.stamp}")).resolve()
    problem = saved_state_problem(experiment) if record else None
    resumed = record is not None and problem is None
    if (
        record is not None and problem is not None
    ):  # e.g. killed before Tune saved, or while it copied its state
        progress(
            f"[{name}] cannot restore {experiment} ({problem}): running the sweep's trials again "
            "(the defaults' metrics and the MLflow parent run are kept)"
        )
    done = finished_rows(saved_trials(experiment), params) if resumed else []
    callback = ProgressCallback(params, job.objective, total=plan.total, progress=progress, done=done)
    callbacks = [callback, *([StepDelayCallback(job.faults)] if job.faults.driver_step_delay_s else [])]
    resources = target.trial_resources(data) or {"cpu": job.search.cpus_per_trial}
    trainable = tune.with_resources(
        make_trainable(space.target, data_ref, plan.base_dict, job.objective), resources
    )
    if resumed:
        tuner = _restore(experiment, trainable, plan.param_space, callbacks)
    else:  # fresh (or killed before Tune saved any state: start that experiment over)
        shutil.rmtree(experiment, ignore_errors=True)
        tuner = tune.Tuner(
            trainable,
            param_space=plan.param_space,
            tune_config=tune.TuneConfig(
                search_alg=plan.search_alg,
                scheduler=plan.scheduler,
                num_samples=plan.num_samples,
                reuse_actors=target.reuse_actors,
                trial_dirname_creator=lambda t: f"trial_{t.trial_id}",
            ),
            run_config=tune.RunConfig(
                name=experiment.name, storage_path=str(experiment.parent), verbose=0, callbacks=callbacks
            ),
        )
    job_now, space_now = job_fingerprint(job, space)
    if record is None:
        record = SweepRecord(
            experiment=str(experiment.relative_to(out.resolve())),
            job=job_now,
            space=space_now,
            baseline_metrics=base_metrics,
        )
    else:
        record.resumes += 1
    record.write(out)  # before anything else can die: a rerun now resumes this experiment
    if job.tracking.enabled:
        record.mlflow_run_id = start_parent_run(out, space, job, record.mlflow_run_id)
        record.write(out)
    if resumed:
        progress(f"[{name}] resumed {len(done)} finished trials of {plan.total} from {experiment}")
    progress(
        f"[{name}] sweeping: {job.search.algorithm}, {plan.total} trials, {job.search.max_concurrent} concurrent"
    )
    return tuner, record, experiment, done, callback


def _meta(
    plan: SweepPlan,
    target: Any,
    rows: list[dict[str, Any]],
    grid: Any,
    record: Any,
    base_metrics: dict[str, float],
    callback: Any,
    done: list,
    prepare_s: float,
    sweep_s: float,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """The sweep's summary fields (summary.json) besides the rows' own: timings, resumes, the defaults."""
    job, name = plan.job, plan.name
    meta = {
        "name": name,
        "target": plan.space.target,
        "space": plan.space_path,
        "base_config": plan.base_path,
        "base_overrides": job.base_overrides,
        "algorithm": job.search.algorithm,
        "seed": job.search.seed,
        "errors": len(grid.errors),
        "prepare_seconds": round(prepare_s, 1),
        "seconds": round(sweep_s, 1),  # this driver's part of the sweep (see resumed_trials)
        "trials_per_minute": round(len(callback.rows) / sweep_s * 60.0, 1),  # trials this driver ran
        "resumed_trials": len(done),
        "resumes": record.resumes,
        "baseline_objective": base_metrics["objective"],
        "baseline_metrics": {
            k: v for k, v in base_metrics.items() if not k.startswith("eval_") and isinstance(v, int | float)
        },
    }
    meta.update(
        target.summarize(rows, plan.base_dict, list(plan.space.params), plan.max_t)
    )  # e.g. the epochs ASHA saved
    if "epoch_fraction" in meta:
        progress(
            f"[{name}] {job.search.scheduler}: {meta['epochs_run']} epochs trained of {meta['epochs_budget']} "
            f"({len(rows)} trials x {plan.max_t}): fraction {meta['epoch_fraction']:.3f}, saved {meta['asha_saved_fraction']:.1%} "
            f"({meta['trials_stopped_early']} trials stopped early; {meta['asha_saved_fraction_vs_planned']:.1%} vs each trial's own plan)"
        )
    return meta


def _finish(
    plan: SweepPlan,
    record: Any,
    rows: list[dict[str, Any]],
    meta: dict[str, Any],
    t_start: float,
    progress: Callable[[str], None],
) -> SweepResult:
    """Write the outputs, log them to MLflow, mark the sweep finished."""
    from monovec.tuning.report import log_to_mlflow, write_outputs

    job, out = plan.job, plan.out
    result = write_outputs(out, plan.space, job, rows, plan.baseline, meta, progress)
    if job.tracking.enabled:
        run_id = log_to_mlflow(result, plan.space, job, plan.space_path, record.mlflow_run_id)
        result.summary["mlflow_run_id"] = run_id
        progress(
            f"[{plan.name}] MLflow parent run {run_id} with {len(rows)} child runs (experiment {job.tracking.experiment})"
        )
    result.summary["total_seconds"] = round(time.perf_counter() - t_start, 1)
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2))
    record.finished = True
    record.write(out)
    return result
