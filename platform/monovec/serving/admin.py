"""The admin token of the classifier app: one lookup shared by the router and the CLI client.

`$<admin_token_env>` (default MONOVEC_ADMIN_TOKEN) wins; else `<state dir>/serve/admin_token`, the
owner-only file `monovec serve up` creates. None means the admin endpoints are disabled.
"""

from __future__ import annotations

import os
from pathlib import Path

from monovec.paths import state_dir


def admin_token(env_var: str = "MONOVEC_ADMIN_TOKEN", state: str | Path | None = None) -> str | None:
    """The configured admin bearer token, or None when neither the variable nor the file exists.

    `state` is the state folder holding `serve/admin_token` (default: this process's state dir)."""
    value = os.environ.get(env_var)
    if value:
        return value
    path = Path(state or state_dir()) / "serve" / "admin_token"
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None
