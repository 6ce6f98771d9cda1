"""Small helpers shared by CLI sub-apps: one error shape and one set of exit codes.

Exit codes (documented in docs/cli.md): 0 success; 1 the work ran and failed (a job, a deploy, a
health check); 2 bad input (arguments, config, the text or file given); 3 something named was not
found (a model, a file, a registry alias). With `--json` an error is printed to stdout as
`{"error": {"code", "message"}}`, the shape the HTTP API uses; otherwise as one `error:` line on stderr.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from pydantic import BaseModel

T = TypeVar("T", bound=BaseModel)

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_NOT_FOUND = 3
_DEFAULT_CODES = {EXIT_FAILED: "failed", EXIT_BAD_INPUT: "bad_input", EXIT_NOT_FOUND: "not_found"}


def fail(
    message: str, code: int = EXIT_BAD_INPUT, *, error_code: str | None = None, as_json: bool = False
) -> NoReturn:
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


# The options every command that runs a job takes, as the job scripts do (monovec.entry).
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="the job's YAML config")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="output directory (shorthand for out_dir=DIR)")]
FromTuneOpt = Annotated[
    str | None,
    typer.Option(
        "--from-tune",
        help="apply a Tune sweep's best overrides: its folder, a folder of sweeps (the newest), its best.yaml or MLflow run id",
    ),
]
OverridesArg = Annotated[
    list[str] | None, typer.Argument(help="dotted overrides, key.path=value (values parsed as YAML)")
]


def job_config(
    cls: type[T],
    config: Path | None,
    overrides: list[str] | None,
    out: Path | None = None,
    from_tune: str | None = None,
    default_config: Path | None = None,
) -> T:
    """`monovec.entry.load_job_config`, a ConfigError printed as one error line (exit 2)."""
    from monovec.config import ConfigError
    from monovec.entry import load_job_config

    try:
        cfg = load_job_config(
            cls, config, overrides, out=out, from_tune=from_tune, default_config=default_config, note=note
        )
    except ConfigError as exc:
        fail(str(exc))
    return cfg
