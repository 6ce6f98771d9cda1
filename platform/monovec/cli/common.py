"""Small helpers shared by CLI sub-apps."""

from __future__ import annotations

from typing import NoReturn

import typer


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one clear error line (no traceback) and exit."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)
