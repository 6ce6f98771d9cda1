"""Small helpers shared by CLI sub-apps: one error shape and one set of exit codes.

Exit codes (documented in docs/cli.md): 0 success; 1 the work ran and failed (a job, a deploy, a
health check); 2 bad input (arguments, config, the text or file given); 3 something named was not
found (a model, a file, a registry alias). With `--json` an error is printed to stdout as
`{"error": {"code", "message"}}`, the shape the HTTP API uses; otherwise as one `error:` line on stderr.
"""

from __future__ import annotations

import json
from typing import NoReturn

import typer

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_NOT_FOUND = 3
_DEFAULT_CODES = {EXIT_FAILED: "failed", EXIT_BAD_INPUT: "bad_input", EXIT_NOT_FOUND: "not_found"}


def fail(message: str, code: int = EXIT_BAD_INPUT, *, error_code: str | None = None, as_json: bool = False) -> NoReturn:
    """Print one clear error (no traceback) and exit with `code`."""
    if as_json:
        body = {"error": {"code": error_code or _DEFAULT_CODES.get(code, "error"), "message": message}}
        typer.echo(json.dumps(body, ensure_ascii=False))
    else:
        typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def note(message: str) -> None:
    """A side remark for people (which model was picked, where logs went): stderr, never stdout."""
    typer.echo(message, err=True)
