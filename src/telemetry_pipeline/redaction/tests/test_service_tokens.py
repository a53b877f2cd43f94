"""Recall and false-positive rate per rule family of gitleaks' default rules (service_tokens.py).

True positives are made as gitleaks makes its own (cmd/generate/config/rules/*.go: a random secret
from the rule's secret pattern, `secrets.NewSecret`, placed in sample assignments,
`utils.GenerateSampleSecrets`); here with rstr from a seeded random source, in telemetry-shaped
lines. False positives are what gitleaks rejects by design: one character repeated (its entropy check
and global allowlist) and template variables. The peer
corpus' gitleaks rows (literal strings from those rule files) are counted per rule family too.
The whole detector set runs (find), as the redactor does: a secret any detector masks counts.
"""

from __future__ import annotations

import importlib
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import rstr

from telemetry_pipeline.redaction.detectors import find
from telemetry_pipeline.redaction.service_tokens import RULES, Rule, confirmed

CORPUS = Path(__file__).parent / "data" / "pii-peer-corpus.jsonl"
SEED = 14
# rstr caps every repeat at 100; some tokens need 250 characters (1Password's ops_eyJ...{250,}).
importlib.import_module("rstr.xeger").STAR_PLUS_LIMIT = 300
SAMPLES_PER_RULE = 5
# The assignments gitleaks' GenerateSampleSecrets writes, as they reach telemetry: code, a config
# line, a JSON body, an environment dump, YAML.
TRUE_CONTEXTS = (
    '{name}Token := "{secret}"',
    "{name}_api_token = '{secret}'",
    '{{"{name}_key": "{secret}", "retries": 3}}',
    "export {upper}_SECRET={secret}",
    "{name}_secret: {secret}",
)
FALSE_CONTEXT = '{name} = "{value}"'


@dataclass
class Tally:
    positives: int = 0
    hits: int = 0
    negatives: int = 0
    false_positives: int = 0


def _family(rule_id: str) -> str:
    return rule_id.split("-")[0]


def _sample(rule: Rule, generator: rstr.Rstr, context: str) -> tuple[str, str, tuple[int, int]]:
    """A random secret from the rule's pattern (like NewSecret) in `context`, which the rule itself
    confirms (gitleaks' own check of its samples): the secret, the text and the secret's span."""
    for _ in range(50):
        secret = generator.xeger(rule.secret)
        if "\n" in secret:
            continue
        text = context.format(name=rule.name, upper=rule.name.upper(), secret=secret)
        match = rule.pattern.search(text)
        span = confirmed(rule, match) if match is not None else None
        if span is not None:
            return secret, text, span
    raise AssertionError(f"{rule.id}: no sample secret from {rule.secret!r}")


def _hit(text: str, span: tuple[int, int]) -> bool:
    """Every character of text[span] is masked: no finding leaves part of it in place."""
    start, end = span
    covered = [False] * (end - start)
    for finding in find(text):
        for position in range(max(finding.start, start), min(finding.end, end)):
            covered[position - start] = True
    return all(covered)


def _generated_table() -> dict[str, Tally]:
    generator = rstr.Rstr(random.Random(SEED))
    tallies: dict[str, Tally] = defaultdict(Tally)
    for rule in RULES:
        tally = tallies[_family(rule.id)]
        for sample in range(SAMPLES_PER_RULE):
            secret, text, span = _sample(rule, generator, TRUE_CONTEXTS[sample % len(TRUE_CONTEXTS)])
            tally.positives += 1
            tally.hits += _hit(text, span)
        for value in ("x" * len(secret), "${" + rule.name.upper() + "_TOKEN}", "{{ ." + rule.name + " }}"):
            tally.negatives += 1
            tally.false_positives += bool(find(FALSE_CONTEXT.format(name=rule.name, value=value)))
    return tallies


def _corpus_table() -> dict[str, Tally]:
    tallies: dict[str, Tally] = defaultdict(Tally)
    for line in CORPUS.read_bytes().splitlines():
        row = orjson.loads(line)
        rule = re.match(r"gitleaks (\S+) ", row["semantics"])
        if rule is None:
            continue
        tally = tallies[_family(rule.group(1))]
        text = row["text"]
        if row["label"] == "tp":
            tally.positives += 1
            tally.hits += all(_hit(text, span) for span in row["expected_spans"])
        else:
            tally.negatives += 1
            tally.false_positives += bool(find(text))
    return tallies


def _format(title: str, tallies: dict[str, Tally]) -> str:
    lines = [title, f"{'family':22} {'positives':>9} {'recall':>7} {'negatives':>9} {'fp':>4} {'fp rate':>7}"]
    for family, t in sorted(tallies.items()):
        recall = t.hits / t.positives if t.positives else float("nan")
        fp_rate = t.false_positives / t.negatives if t.negatives else 0.0
        lines.append(
            f"{family:22} {t.positives:9} {recall:7.3f} {t.negatives:9} {t.false_positives:4} {fp_rate:7.3f}"
        )
    total = Tally(*(sum(getattr(t, field) for t in tallies.values()) for field in Tally.__dataclass_fields__))
    lines.append(
        f"{'all':22} {total.positives:9} {total.hits / total.positives:7.3f} {total.negatives:9} "
        f"{total.false_positives:4} {total.false_positives / max(total.negatives, 1):7.3f}"
    )
    return "\n".join(lines)


@pytest.fixture(scope="module")
def generated() -> dict[str, Tally]:
    return _generated_table()


def test_recall_per_rule_family_on_gitleaks_style_samples(
    generated: dict[str, Tally], capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        print("\n" + _format("gitleaks rules, generated as gitleaks generates its tests", generated))
    low = [f"{family}: {t.hits}/{t.positives}" for family, t in generated.items() if t.hits < t.positives]
    assert not low, f"secrets left in place: {low}"
    assert len(generated) >= 100  # rule families: the rule set is there


def test_false_positives_per_rule_family_on_gitleaks_rejects(generated: dict[str, Tally]) -> None:
    noisy = [f"{family}: {t.false_positives}/{t.negatives}" for family, t in generated.items()
             if t.false_positives]
    assert not noisy, f"near misses redacted: {noisy}"


def test_recall_per_rule_family_on_the_corpus_gitleaks_rows(capsys: pytest.CaptureFixture[str]) -> None:
    tallies = _corpus_table()
    with capsys.disabled():
        print("\n" + _format("gitleaks rows of the peer corpus (literal test strings)", tallies))
    assert sum(t.positives for t in tallies.values()) > 300
    # One miss is allowed for: a JWT whose header does not decode (detect-secrets' judgement, kept
    # by the JWT false-positive test of test_corpus.py; gitleaks' shape-only rule counts it).
    low = [f"{family}: {t.hits}/{t.positives}" for family, t in tallies.items() if t.hits < t.positives - 1]
    assert not low, f"secrets left in place: {low}"
