"""Ray Tune sweeps over config paths: search spaces, objectives, the runner and its reports.

A sweep names a *target* (the config model its keys address, e.g. `classifier` -> BuildConfig) and a
space file in `tune_spaces/`; the target prepares data once (ray.put) and scores one trial's
overrides. Adding a model family means adding a target, not a runner.
"""
