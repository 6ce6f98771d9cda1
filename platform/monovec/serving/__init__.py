"""Serving the classifier with an A/B experiment: assignment, statistics, guardrails, persistent state.

The modules here are Ray-independent so they are unit-tested in seconds; the Ray Serve
deployments compose them.
"""
