"""The bilingual functional suite (tests/unit/data/safety_cases.yaml) on a model built from the
shipped config on a capped slice of the real data (once per session, no Ray).

Per-kind pass rates are printed; `bench/safety_functional.py` prints the same table for any model
(the full build's numbers are in docs/classifier.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, safety_overrides, tiny_build_overrides

CASES = Path(__file__).parent / "data" / "safety_cases.yaml"
# The bar (>= 95% in CI), held by the capped build too (336/344 = 0.977 in the final CI run, round 3;
# the full build: 341/344, see docs/classifier.md).
MIN_PASS_RATE = 0.95


@pytest.fixture(scope="session")
def safety_pipe(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    from monovec.classify.build import BuildConfig, build_classifier
    from monovec.classify.model import ClassifierModel
    from monovec.classify.pipeline import ClassifierPipeline
    from monovec.config import load_config

    root = tmp_path_factory.mktemp("safety_model")
    overrides = [o for o in tiny_build_overrides(root / "models") if not o.startswith("classifier.safety.")]
    overrides += safety_overrides(4000) + ["evaluate=false"]
    cfg = load_config(BuildConfig, REPO / "jobs" / "configs" / "classifier.yaml", overrides)
    model_dir = build_classifier(cfg, progress=lambda _m: None).model_dir
    return ClassifierPipeline(ClassifierModel.load(model_dir))


def test_suite_is_large_bilingual_and_covers_both_sides() -> None:
    from monovec.classify.cases import load_cases

    cases = load_cases(CASES)
    texts = [t for g in cases.groups for t in g.en + g.ko]
    assert len(texts) >= 300 and len(set(texts)) == len(texts)
    assert sum(len(g.ko) for g in cases.groups) >= 120
    harmful = [
        g
        for g in cases.groups
        if g.expect.decision in ("block", "escalate") or g.expect.harmful or g.expect.hate
    ]
    benign = [g for g in cases.groups if g.expect.decision == "allow" or g.expect.hate is False]
    assert len(harmful) >= 10 and len(benign) >= 10


def test_suite_shares_no_sentence_with_the_training_examples() -> None:
    from monovec.classify.cases import load_cases
    from monovec.classify.safety_data import expand_templates, load_example_file, load_template_file

    examples = {t for g in load_example_file().groups for t in g.en + g.ko}
    templates = {t.lower() for _, t, _, _ in expand_templates(load_template_file())}
    cases = {t for g in load_cases(CASES).groups for t in g.en + g.ko}
    assert not (examples & cases)
    assert not ({t.lower() for t in cases} & templates)


def test_functional_suite_pass_rate(safety_pipe, capsys: pytest.CaptureFixture[str]) -> None:
    from monovec.classify.cases import load_cases, pass_rates, run_cases

    results = run_cases(safety_pipe, load_cases(CASES))
    rates = pass_rates(results)
    with capsys.disabled():
        print()
        for kind, r in sorted(rates.items()):
            print(f"  {kind:34s} {int(r['passed']):3d}/{int(r['n']):3d}  {r['rate']:.2f}")
    # consistency holds on every case, whatever the model learned
    assert not [r.text for r in results if any("not in labels" in f for f in r.failures)]
    assert rates["_all"]["rate"] >= MIN_PASS_RATE, [
        (r.kind, r.text, r.failures) for r in results if not r.passed
    ]
