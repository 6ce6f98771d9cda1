"""Pass rate of the safety functional suite per kind of behaviour, for a built model.

    python bench/safety_functional.py [--model DIR|models:/…] [--cases tests/unit/data/safety_cases.yaml] [--failures]

The suite is the project's own (bilingual, written for monovec). The unit test runs it on a capped
build; this script runs it on any model, e.g. the full build of jobs/configs/classifier.yaml. It
prints each kind's pass rate (English / Korean) and the overall rate against the 95 % target.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="model dir or models:/… (default: newest local build)")
    parser.add_argument("--cases", default=str(REPO / "tests" / "unit" / "data" / "safety_cases.yaml"))
    parser.add_argument("--failures", action="store_true", help="also list every failing case")
    args = parser.parse_args()
    from monovec.classify.cases import load_cases, pass_rates, run_cases
    from monovec.classify.service import load_pipeline

    try:
        pipe = load_pipeline(args.model, threads=2)
    except FileNotFoundError as exc:
        print(
            f"error: {exc}\n(build a model first: monovec classifier build --config jobs/configs/classifier.yaml)",
            file=sys.stderr,
        )
        return 2
    results = run_cases(pipe, load_cases(args.cases))
    rates = pass_rates(results)
    print(f"model: {pipe.model.version}   cases: {len(results)}")
    print(f"{'kind':<34} {'passed':>9} {'rate':>6} {'en':>6} {'ko':>6}")
    for kind, r in sorted(rates.items(), key=lambda kv: (kv[0] == "_all", kv[0])):
        en, ko = (f"{r[k]:.2f}" if k in r else "-" for k in ("en", "ko"))
        print(f"{kind:<34} {int(r['passed']):>4}/{int(r['n']):<4} {r['rate']:>6.2f} {en:>6} {ko:>6}")
    overall = rates["_all"]["rate"]
    print(f"target: >= 0.95 overall ({'PASS' if overall >= 0.95 else 'FAIL'}: {overall:.3f})")
    if args.failures:
        for r in results:
            if not r.passed:
                print(f"FAIL {r.kind} [{r.lang}] {r.text!r}: {'; '.join(r.failures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
