"""`monovec` command line. Thin: parse, call the library, print."""

from monovec.cli.main import app

__all__ = ["app"]
