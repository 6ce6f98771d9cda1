"""Functional test cases for the safety stage: kinds of behaviour, each with its expectation.

The suite (tests/unit/data/safety_cases.yaml) is run by the unit tests (pass rate >= 95 %) and by
`bench/safety_functional.py` (pass rate per kind). A case passes when every key of its group's
`expect` holds on the pipeline's answer (escalate=False) and every head's label is in its labels.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field

from monovec.classify.pipeline import ClassifierPipeline
from monovec.config import StrictModel


class Expectation(StrictModel):
    decision: Literal["allow", "block", "escalate"] | None = Field(
        None, description="the exact top-level decision"
    )
    harmful: bool | None = Field(None, description="decision != allow")
    hate: bool | None = Field(None, description="safety.categories.hate >= its threshold")
    category: str | None = Field(None, description="this category's score >= its threshold")
    emotion: str | None = Field(None, description="the emotion head's label")


class CaseGroup(StrictModel):
    kind: str = Field(min_length=1)
    expect: Expectation
    en: list[str] = Field(default_factory=list)
    ko: list[str] = Field(default_factory=list)


class CaseFile(StrictModel):
    version: str
    groups: list[CaseGroup] = Field(min_length=1)


@dataclass
class CaseResult:
    kind: str
    lang: str
    text: str
    passed: bool
    failures: list[str]
    answer: dict[str, Any]


def load_cases(path: str | Path) -> CaseFile:
    return CaseFile.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


def check(answer: dict[str, Any], expect: Expectation, pipe: ClassifierPipeline) -> list[str]:
    """The expectation keys that do not hold (empty = pass)."""
    failures = []
    safety = answer.get("safety") or {"categories": {}}
    cats = pipe.model.config.safety.categories if pipe.model.config.safety else {}

    def flagged(name: str) -> bool:
        return name in cats and safety["categories"].get(name, 0.0) >= cats[name].threshold

    if expect.decision is not None and answer["decision"] != expect.decision:
        failures.append(f"decision {answer['decision']} != {expect.decision}")
    if expect.harmful is not None and (answer["decision"] != "allow") != expect.harmful:
        failures.append(f"harmful expected {expect.harmful}, decision {answer['decision']}")
    if expect.hate is not None and flagged("hate") != expect.hate:
        failures.append(f"hate expected {expect.hate}, score {safety['categories'].get('hate', 0.0):.2f}")
    if expect.category is not None and not flagged(expect.category):
        failures.append(
            f"{expect.category} score {safety['categories'].get(expect.category, 0.0):.2f} below threshold"
        )
    if expect.emotion is not None and answer["heads"]["emotion"]["label"] != expect.emotion:
        failures.append(f"emotion {answer['heads']['emotion']['label']} != {expect.emotion}")
    for name, head in answer["heads"].items():
        if head["labels"] and head["label"] not in head["labels"]:
            failures.append(f"{name}: label {head['label']} not in labels {head['labels']}")
    return failures


def run_cases(pipe: ClassifierPipeline, cases: CaseFile, batch_size: int = 64) -> list[CaseResult]:
    """Classify every case (in batches, no escalation) and check it."""
    items = [
        (g, lang, t) for g in cases.groups for lang, texts in (("en", g.en), ("ko", g.ko)) for t in texts
    ]
    results: list[CaseResult] = []
    for i in range(0, len(items), batch_size):
        chunk = items[i : i + batch_size]
        answers = pipe.classify_batch([t for _, _, t in chunk], escalate=False)
        for (g, lang, text), answer in zip(chunk, answers, strict=True):
            failures = check(answer, g.expect, pipe)
            results.append(CaseResult(g.kind, lang, text, not failures, failures, answer))
    return results


def pass_rates(results: list[CaseResult]) -> dict[str, dict[str, float]]:
    """kind -> {n, passed, rate, en, ko}; plus '_all'."""
    by: dict[str, list[CaseResult]] = defaultdict(list)
    for r in results:
        by[r.kind].append(r)
    by["_all"] = list(results)
    out = {}
    for kind, rs in by.items():
        row: dict[str, float] = {
            "n": len(rs),
            "passed": sum(r.passed for r in rs),
            "rate": sum(r.passed for r in rs) / len(rs),
        }
        for lang in ("en", "ko"):
            lr = [r for r in rs if r.lang == lang]
            if lr:
                row[lang] = sum(r.passed for r in lr) / len(lr)
        out[kind] = row
    return out
