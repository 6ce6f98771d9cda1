"""What several benches share: the texts they time and the process memory they read.

Benches run as scripts (`python bench/<name>.py`), so Python puts this folder first on `sys.path` and
`from benchlib import ...` finds this file, in the bench and in the child processes it spawns the same way.
"""

from __future__ import annotations

import json


def dev_texts(n: int, max_chars: int | None = None) -> list[str]:
    """The first `n` texts of GoEmotions dev, English and Korean alternating (each row gives its pair), each
    cut to `max_chars` characters when given: real traffic-like text in both languages, the same every run."""
    from monovec.paths import data_dir

    out: list[str] = []
    with (data_dir() / "goemotions" / "dev.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            out += [rec["text_en"][:max_chars], rec["text_ko"][:max_chars]]
            if len(out) >= n:
                break
    return out[:n]


def rss_mb() -> float:
    """This process's resident set size in MiB (`VmRSS` of /proc/self/status; 0.0 where there is none)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
