"""Typed Serve app builders; each has a `serve deploy`-able YAML next to it."""
