"""The shell commands that README.md and docs/*.md print, parsed the way a reader copies them.

A ```bash (or sh / console / shell) block holds commands: one per line, `\\` continues a line, a line
starting with `#` is a comment, and two spaces then `#` start a trailing comment. A block right after
an HTML comment `<!-- not run here: REASON -->` holds commands for infrastructure this machine does
not have (Kubernetes, AWS, Docker); they are collected with their reason instead of being run.
`.venv/bin/` in front of a command is dropped when commands are compared: the docs assume the
virtual environment is active, the README spells the path out.

Unit tests check the parsing; tests/e2e/test_documented_commands.py runs the commands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHELL_LANGS = {"bash", "sh", "shell", "console"}
_FENCE = re.compile(r"^```(\w*)\s*$")
_NOT_RUN = re.compile(r"<!--\s*not run here:\s*(.+?)\s*-->")
_TRAILING_COMMENT = re.compile(r"\s{2,}#.*$")


@dataclass(frozen=True)
class DocCommand:
    """One command as printed: where it is, the exact text, and why it is not run (None: it is run)."""

    path: str
    line: int
    text: str
    not_run: str | None = None

    @property
    def key(self) -> str:
        """The command as compared against the journey (venv prefix dropped, spaces collapsed)."""
        return normalise(self.text)


def normalise(command: str) -> str:
    return " ".join(command.replace(".venv/bin/", "").split())


def doc_files(repo: Path = REPO) -> list[Path]:
    return [repo / "README.md", *sorted((repo / "docs").rglob("*.md"))]


def parse_commands(text: str, path: str = "<text>") -> list[DocCommand]:
    """Every command of every shell block of one markdown text, in order."""
    out: list[DocCommand] = []
    lines = text.splitlines()
    i, reason = 0, None
    while i < len(lines):
        m_skip = _NOT_RUN.search(lines[i])
        if m_skip:
            reason = m_skip.group(1)
            i += 1
            continue
        m = _FENCE.match(lines[i].strip())
        if not m:
            if lines[i].strip():
                reason = None  # the marker applies to the very next block only
            i += 1
            continue
        lang, i = m.group(1).lower(), i + 1
        pending, start = "", 0
        while i < len(lines) and not lines[i].strip().startswith("```"):
            raw = lines[i]
            i += 1
            if lang not in SHELL_LANGS:
                continue
            stripped = raw.strip()
            if not pending and (not stripped or stripped.startswith("#")):
                continue
            body = _TRAILING_COMMENT.sub("", raw).rstrip()
            if not pending:
                start = i
            if body.endswith("\\"):
                pending += body[:-1].strip() + " "
                continue
            out.append(DocCommand(path, start, (pending + body.strip()).strip(), reason))
            pending = ""
        i += 1  # closing fence
        reason = None
    return out


def documented_commands(repo: Path = REPO) -> list[DocCommand]:
    """Every command printed in README.md and docs/, in file order."""
    found = []
    for f in doc_files(repo):
        found.extend(parse_commands(f.read_text(encoding="utf-8"), str(f.relative_to(repo))))
    return found
