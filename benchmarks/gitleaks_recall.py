"""Recall of our redactor per gitleaks rule family, on secrets drawn from gitleaks' own rules.

    .venv/bin/python benchmarks/gitleaks_recall.py [--rules PATH/gitleaks.toml] [--samples N] [--seed S]

gitleaks' default rule set is vendored (src/telemetry_pipeline/redaction/gitleaks/, MIT; its
SOURCE.md names the commit); `--rules` measures another version of it. What is drawn, which
contexts count (only where gitleaks itself reports the secret) and which draws are left out as no
tokens of their format: redaction/tests/gitleaks_measure.py, shared with the test that prints the
same table with per-family floors (redaction/tests/test_gitleaks_rules.py). Here: more samples,
the missed texts on request, and `results/<stamp>-gitleaks-recall.json`.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

from _workload import host_info, run_stamp, write_json

from telemetry_pipeline.redaction import RedactionConfig, Redactor
from telemetry_pipeline.redaction.config import DEV_HMAC_KEY
from telemetry_pipeline.redaction.pseudonym import Pseudonymizer
from telemetry_pipeline.redaction.service_tokens import gitleaks_config
from telemetry_pipeline.redaction.tests._table import format_table
from telemetry_pipeline.redaction.tests.gitleaks_measure import (
    CONTEXTS,
    TABLE_COLUMNS,
    FamilyTally,
    family_of,
    measure,
    table_row,
)


def _json_row(name: str, tally: FamilyTally) -> dict[str, object]:
    def rounded(value: float) -> float | None:
        return None if value != value else round(value, 4)  # nan: gitleaks reports it in no context

    return {
        "name": name, "rules": tally.rules, "kind": "+".join(sorted(tally.kinds)),
        "drawn": tally.drawn,
        "not_tokens": tally.not_tokens, "samples": dict(tally.samples),
        **{f"recall_{context}": rounded(tally.recall(context)) for context in CONTEXTS},
        "recall": rounded(tally.recall()), "near_misses": tally.near_misses,
        "false_positives": tally.false_positives,
        "false_positive_rate": round(tally.false_positive_rate(), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rules", type=Path, help="another gitleaks.toml (default: the vendored one)")
    parser.add_argument("--samples", type=int, default=20, help="secrets drawn per rule")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--misses", action="store_true", help="print up to two missed texts per rule")
    args = parser.parse_args()
    config = tomllib.loads(args.rules.read_text()) if args.rules else gitleaks_config()
    redactor = Redactor(RedactionConfig(), Pseudonymizer(DEV_HMAC_KEY))
    results, families = measure(config, redactor, args.samples, args.seed)
    # Worst first; families with no draw left to measure (every one no token) last.
    order = sorted(families, key=lambda name: (families[name].recall() != families[name].recall(),
                                               families[name].recall() or 0.0, name))
    by_kind: dict[str, FamilyTally] = {}
    for result in results:
        if not result.skipped:
            by_kind.setdefault(result.kind, FamilyTally()).add(result)
            by_kind.setdefault("all", FamilyTally()).add(result)
    reached = sum(families[name].recall() >= 0.99 for name in order)
    print(f"gitleaks rules: {len(results)}, families: {len(families)}, at 0.99+: {reached}")
    print(format_table(TABLE_COLUMNS, [table_row(name, families[name]) for name in order]))
    print()
    print(format_table(TABLE_COLUMNS, [table_row(kind, tally) for kind, tally in sorted(by_kind.items())]))
    for result in results:
        if result.skipped:
            print(f"not measured: {result.rule_id}: {result.skipped}")
        if args.misses:
            for text in result.missed_examples:
                print(f"  missed {result.rule_id} ({family_of(result.rule_id)}): {text[:160]!r}")
    if not args.no_write:
        path = Path(__file__).parent / "results" / f"{run_stamp()}-gitleaks-recall.json"
        write_json(path, {
            "command": " ".join(["benchmarks/gitleaks_recall.py", *sys.argv[1:]]),
            "host": host_info(), "samples_per_rule": args.samples, "seed": args.seed,
            "families": [_json_row(name, families[name]) for name in order],
            "by_kind": [_json_row(kind, tally) for kind, tally in sorted(by_kind.items())],
            "rules": [
                {"id": result.rule_id, "kind": result.kind, "skipped": result.skipped, "drawn": result.drawn,
                 "not_tokens": result.not_tokens, "samples": dict(result.samples), "hits": dict(result.hits),
                 "near_misses": result.near_misses, "false_positives": result.false_positives}
                for result in results
            ],
        })
        print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
