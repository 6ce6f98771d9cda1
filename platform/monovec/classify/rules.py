"""Stage 1 of the classifier: a small, explicit rule set for the few cases that must never wait
for a model (threats, self-harm, obvious profanity), read from YAML so policy changes need no code.

Why a rule file and not a model: these decisions must be auditable (every hit names its rule and
the matched span) and precise; a false block on ordinary Reddit or news text is expensive, so each
rule carries `unless` patterns for idioms ("시발점", "this bug is killing me") that are masked out
before the rule's own patterns run. Rules are checked in file order and the first hit wins, so put
escalations that need a human (self_harm) before blocks.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from monovec.config import StrictModel
from monovec.paths import resource_path

Action = Literal["block", "escalate"]
_HANGUL = re.compile(r"[가-힣ㄱ-ㅣ]")
_LATIN = re.compile(r"[A-Za-z]")


class RuleConfig(StrictModel):
    """Whether stage 1 runs and which rule file it reads."""

    enabled: bool = Field(True, description="run the rule stage; false makes check() always return None")
    rules_file: str | None = Field(
        None, description="YAML rule file; None reads the packaged resources/rules.yaml"
    )


class RuleResult(BaseModel):
    """One rule hit: what to do, why, and where, so a reviewer can audit the decision."""

    model_config = ConfigDict(frozen=True)

    action: Action | None = Field(
        None,
        description="the rule file's own action; None when the safety taxonomy's policy decides (see taxonomy.py)",
    )
    category: str = Field(description="harm category, e.g. self_harm, violence, crime, profanity, hate")
    subtype: str = Field(
        "",
        description="subtype within the category (self_harm: ideation / method / encouragement; crime: drugs / fraud / weapons)",
    )
    rule_id: str = Field(description="id of the rule that fired")
    reason: str = Field(description="human-readable: the category and the matched span")
    matched: str = Field("", description="the text span that matched")
    damps: tuple[str, ...] = Field(
        (),
        description="context rules: the categories whose model scores the hit damps (empty = the config's)",
    )


class RuleSpec(StrictModel):
    """One rule as written in the YAML file."""

    id: str = Field(min_length=1, description="unique id, reported in every hit")
    category: str = Field(
        min_length=1, description="harm category (a safety taxonomy name: its policy decides)"
    )
    subtype: str = Field("", description="subtype within the category, reported with the hit")
    action: Action | None = Field(
        None, description="action for models without a safety taxonomy (legacy); the taxonomy's policy wins"
    )
    patterns: list[str] = Field(
        min_length=1, description="regexes (case-insensitive); any match fires the rule"
    )
    unless: list[str] = Field(
        default_factory=list, description="regexes for idioms/exceptions, masked out before matching"
    )
    languages: list[Literal["ko", "en"]] = Field(
        default_factory=lambda: ["ko", "en"], description="scripts the rule applies to"
    )
    damps: list[str] = Field(
        default_factory=list,
        description="category `context` only: the categories whose model scores a hit damps (an idiom such as "
        "'dying to know' damps violence and self_harm, not hate); empty = safety.context.categories",
    )
    description: str = ""

    @model_validator(mode="after")
    def _compiles(self) -> RuleSpec:
        if self.damps and self.category != "context":
            raise ValueError(
                f"rule {self.id!r}: `damps` is for category context only (got {self.category!r})"
            )
        for field in ("patterns", "unless"):
            for pattern in getattr(self, field):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(
                        f"rule {self.id!r}: {field} regex {pattern!r} does not compile: {exc}"
                    ) from None
        return self


class RuleFile(StrictModel):
    """The whole rule file: a version string and the ordered rule list."""

    version: str = "rules"
    rules: list[RuleSpec] = Field(min_length=1)

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, rules: list[RuleSpec]) -> list[RuleSpec]:
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise ValueError(f"duplicate rule id {rule.id!r}")
            seen.add(rule.id)
        return rules


def load_rule_file(path: str | Path) -> RuleFile:
    """Read and validate a rule file; ValueError names the file, the rule id and the bad regex."""
    p = Path(path)
    try:
        data: Any = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"rules file not found: {p}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"rules file {p} is not valid YAML: {exc}") from None
    try:
        return RuleFile.model_validate(data)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(x) for x in err['loc']) or '<root>'}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise ValueError(f"invalid rules file {p}: {details}") from None


class _CompiledRule:
    """A RuleSpec with its patterns joined into one regex (one scan per rule, not per pattern)."""

    __slots__ = ("spec", "match", "unless", "languages")

    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec
        self.match = re.compile("|".join(f"(?:{p})" for p in spec.patterns), re.IGNORECASE)
        self.unless = (
            re.compile("|".join(f"(?:{p})" for p in spec.unless), re.IGNORECASE) if spec.unless else None
        )
        self.languages = frozenset(spec.languages)


class RuleEngine:
    """First-match rule checker over already-normalised text (see KoreanNormalizer)."""

    VERSION = "rules-1"

    def __init__(self, config: RuleConfig | None = None) -> None:
        self.config = config or RuleConfig()
        path = (
            Path(self.config.rules_file).expanduser()
            if self.config.rules_file
            else resource_path("rules.yaml")
        )
        self.rule_file = load_rule_file(path)
        self._rules = [_CompiledRule(spec) for spec in self.rule_file.rules]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
        self.version = f"{self.VERSION}:{self.rule_file.version}:{digest}"

    @property
    def categories(self) -> list[str]:
        """Categories in rule-file order, each once."""
        return list(dict.fromkeys(r.spec.category for r in self._rules))

    def check(self, text: str) -> RuleResult | None:
        """The first rule that fires on `text`, or None. `text` must already be normalised."""
        hits = self.check_all(text, first_only=True)
        return hits[0] if hits else None

    def check_all(self, text: str, first_only: bool = False) -> list[RuleResult]:
        """Every rule that fires on `text`, in file order (several categories may fire at once)."""
        if not self.config.enabled or not text:
            return []
        langs = {lang for lang, rx in (("ko", _HANGUL), ("en", _LATIN)) if rx.search(text)}
        if not langs:
            return []
        out: list[RuleResult] = []
        for rule in self._rules:
            if rule.languages.isdisjoint(langs):
                continue
            masked = rule.unless.sub(lambda m: " " * len(m.group(0)), text) if rule.unless else text
            hit = rule.match.search(masked)
            if hit is not None:
                span = hit.group(0).strip()
                spec = rule.spec
                out.append(
                    RuleResult(
                        action=spec.action,
                        category=spec.category,
                        subtype=spec.subtype,
                        rule_id=spec.id,
                        reason=f"{spec.category}: matched '{span}'",
                        matched=span,
                        damps=tuple(spec.damps),
                    )
                )
                if first_only:
                    break
        return out
