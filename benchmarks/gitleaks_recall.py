"""Recall of our redactor per gitleaks rule family, on secrets drawn from gitleaks' own rules.

    .venv/bin/python benchmarks/gitleaks_recall.py --rules PATH/gitleaks.toml [--samples N] [--seed S]

gitleaks' default rule set (`config/gitleaks.toml` in github.com/gitleaks/gitleaks, MIT) is read
from the file you give: none of its content is kept in this repository. For every rule, rstr draws
N strings from the rule's regex; the secret is the rule's `secretGroup` (else its longest non-empty
group, else the whole match: gitleaks takes the first group, which differs only where a group holds
the keyword), redrawn until it reaches the rule's `entropy` and passes its allowlists and the
global one. A rule it cannot draw from (no regex, or nothing drawn passes) is reported, not counted.

Each secret goes through `Redactor.redact_text` three times: as an attribute value alone; in a
log line `... <name>=<secret> ...` (see `keyword_for`); and the whole string drawn, as gitleaks
matches it (`curl -H ...`, a YAML Secret), in a log line. A secret counts as redacted when no
6-character piece of it survives, past the fixed prefix every drawn secret of the rule shares.

False positives: the rule's allowlists and stopwords are not samples; the near misses are the
secret cut to half the shortest length its pattern allows, and the prefix all drawn secrets share
(3+ characters) in prose and with a placeholder; any change the redactor makes to them counts.

Rules whose regex is a keyword, an assignment and a character class with no fixed prefix
(gitleaks' semi-generic rules) are marked `keyword`: a blob that only a provider's name beside it
tells from any other string; `format`: the token has a distinctive shape of its own.

Prints the table per family (worst recall first) and writes `results/<stamp>-gitleaks-recall.json`.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import random
import re
import sys
import tomllib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rstr
from _workload import host_info, run_stamp, write_json

from telemetry_pipeline.redaction import RedactionConfig, Redactor
from telemetry_pipeline.redaction.config import DEV_HMAC_KEY
from telemetry_pipeline.redaction.pseudonym import Pseudonymizer

# rstr caps open repeats at 100; gitleaks has {250,} (1Password) and {100,}.
importlib.import_module("rstr.xeger").STAR_PLUS_LIMIT = 300
DRAWS_PER_SAMPLE = 40
SURVIVING_PIECE = 6  # characters of a secret left in place that make it count as missed
_MID_CASE_FLAG = re.compile(r"(?<!^)\(\?i\)")
# gitleaks' "keyword = value" template: an assignment operator between the name and the value.
_ASSIGNMENT = r"(?:=|>|:{1,3}=|\|\||:|=>|\?=|,)"
LOG_LINE = "2026-12-06T06:40:00Z INFO client configured {keyword}={secret} region=eu-west-1 attempt=2"
TWO_WORD_FAMILIES = ("new-relic",)
CONTEXTS = ("alone", "log_line", "as_drawn")
_PARSER = importlib.import_module("re._parser")


def python_regex(go_regex: str) -> re.Pattern[str]:
    """A Go (RE2) regex as Python's re: a `(?i)` past the start applies to the rest of its group in
    RE2 and is an error in Python; it becomes a whole-pattern flag (only ever a superset: the
    pattern extracts the secret from a string drawn from it). RE2's `\\z` is Python's `\\Z`."""
    pattern = go_regex.replace(r"\z", r"\Z")
    flags = 0
    if _MID_CASE_FLAG.search(pattern):
        pattern = _MID_CASE_FLAG.sub("", pattern)
        flags = re.IGNORECASE
    return re.compile(pattern, flags)


def shannon_entropy(text: str) -> float:
    """Bits per character, as gitleaks computes it for its `entropy` threshold."""
    counts = Counter(text)
    return -sum(count / len(text) * math.log2(count / len(text)) for count in counts.values())


def family_of(rule_id: str) -> str:
    return next((name for name in TWO_WORD_FAMILIES if rule_id.startswith(name)), rule_id.split("-", 1)[0])


@dataclass
class Allowlist:
    """One of gitleaks' allowlists, as far as a drawn secret goes: regexes against the secret, the
    whole match or the line, and stopwords; `AND` allowlists also need a path, which telemetry
    has not, so they never apply."""

    regexes: list[re.Pattern[str]]
    target: str
    stopwords: list[str]
    applies: bool

    @classmethod
    def parse(cls, table: dict[str, Any]) -> Allowlist:
        return cls(
            [python_regex(regex) for regex in table.get("regexes", [])], table.get("regexTarget", "secret"),
            [word.lower() for word in table.get("stopwords", [])],
            not (table.get("condition") == "AND" and table.get("paths")),
        )

    def allows(self, secret: str, match: str, line: str) -> bool:
        text = {"match": match, "line": line}.get(self.target, secret)
        return self.applies and (
            any(regex.search(text) for regex in self.regexes)
            or any(word in secret.lower() for word in self.stopwords)
        )


@dataclass
class RuleResult:
    rule_id: str
    kind: str = "format"
    skipped: str = ""
    samples: int = 0
    hits: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CONTEXTS, 0))
    near_misses: int = 0
    false_positives: int = 0
    missed_examples: list[str] = field(default_factory=list)  # rule-drawn, random: not real secrets


def draw_secrets(
    rule: dict[str, Any], generator: rstr.Rstr, count: int, global_allowlist: Allowlist
) -> tuple[list[tuple[str, str]], str]:
    """`count` secrets drawn from the rule's regex that gitleaks would report, each with the whole
    string drawn, or a reason why not."""
    try:
        pattern = python_regex(rule["regex"])
    except re.error as exc:
        return [], f"regex not readable by Python's re ({exc.msg})"
    allowlists = [Allowlist.parse(table) for table in rule.get("allowlists", [])] + [global_allowlist]
    secrets: list[tuple[str, str]] = []
    reasons: Counter[str] = Counter()
    for _ in range(count * DRAWS_PER_SAMPLE):
        if len(secrets) == count:
            break
        drawn = generator.xeger(_literal_dots(pattern.pattern))
        match = pattern.search(drawn)
        if match is None:
            reasons["rstr draws no match of the regex"] += 1
            continue
        secret = _secret(rule, pattern, match)
        if shannon_entropy(secret) < rule.get("entropy", 0):
            reasons["below the rule's entropy"] += 1
        elif any(allowlist.allows(secret, match.group(0), drawn) for allowlist in allowlists):
            reasons["allowlisted"] += 1
        else:
            secrets.append((secret, drawn))
    if len(secrets) < count:
        return [], f"{len(secrets)} of {count} drawn; rejections: {dict(reasons)}"
    return secrets, ""


def _literal_dots(regex: str) -> str:
    """For drawing only: an unescaped `.` between two letters read as the dot it stands for
    (`hooks.slack.com`), not as any character."""
    return re.sub(r"(?<=[a-z])(?<!\\[a-z])\.(?=[a-z])", r"\\.", regex)


def _secret(rule: dict[str, Any], pattern: re.Pattern[str], match: re.Match[str]) -> str:
    """The rule's `secretGroup`; else its longest group where that is the secret rather than part of
    the structure (named alternatives, a repeated piece): 16+ characters or a third of the match."""
    if rule.get("secretGroup"):
        return match.group(rule["secretGroup"])
    longest = max((group for group in match.groups() if group), key=len, default="")
    whole = match.group(0)
    if pattern.groupindex or len(longest) < min(16, len(whole) / 3):
        return whole
    return longest


def keyword_for(rule: dict[str, Any], pattern: re.Pattern[str], secret: str) -> str:
    """The name before the secret in the log line: the rule's id as an identifier
    (`adafruit_api_key`) where that makes the line a match of the rule, as a value after a
    keyword is named in code and config; else the first of the rule's keywords, other than the
    token's own prefix, that does; else the family's name (`planetscale=pscale_tkn_...`)."""
    keywords = [rule["id"].replace("-", "_")] + [
        word for word in rule.get("keywords", []) if word not in secret.lower()
    ]
    return next(
        (word for word in keywords if pattern.search(LOG_LINE.format(keyword=word, secret=secret))),
        family_of(rule["id"]),
    )


def redacted_whole(redactor: Redactor, text: str, secret: str, prefix: str) -> bool:
    """No piece of `secret` (SURVIVING_PIECE characters) past the fixed `prefix` every drawn secret
    shares (`sk-ant-api03-`, `_gitlab_session=`: the format, not the secret) is left in the
    redacted text, other than pieces already in the text around it."""
    output = redactor.redact_text(text)
    context = text.replace(secret, "")
    random_part = secret[len(prefix):]
    width = min(SURVIVING_PIECE, len(random_part))
    return not any(
        random_part[start:start + width] in output and random_part[start:start + width] not in context
        for start in range(len(random_part) - width + 1)
    )


def measure_rule(
    rule: dict[str, Any], samples: int, generator: rstr.Rstr, global_allowlist: Allowlist, redactor: Redactor
) -> RuleResult:
    result = RuleResult(rule["id"])
    if "regex" not in rule:
        result.skipped = "no regex (a file-path rule)"
        return result
    secrets, result.skipped = draw_secrets(rule, generator, samples, global_allowlist)
    if result.skipped:
        return result
    pattern = python_regex(rule["regex"])
    prefix = os.path.commonprefix([secret for secret, _ in secrets])  # noqa: RUF071 (strings, not paths)
    if _ASSIGNMENT in rule["regex"] and len(prefix) < 3:
        result.kind = "keyword"
    for secret, drawn in secrets:
        result.samples += 1
        line = LOG_LINE.format(keyword=keyword_for(rule, pattern, secret), secret=secret)
        for context, text in zip(CONTEXTS, (secret, line, f"request failed: {drawn}"), strict=True):
            hit = redacted_whole(redactor, text, secret, prefix)
            result.hits[context] += hit
            if not hit and len(result.missed_examples) < 2:
                result.missed_examples.append(text)
    # Half the shortest the pattern allows (a longer cut of a long token can still be a token).
    shortest = _PARSER.parse(pattern.pattern).getwidth()[0]
    near_misses = [secret[: min(len(secret), shortest) // 2] for secret, _ in secrets[:3]]
    if len(prefix) >= 3:
        near_misses += [f"keys begin with {prefix} and a random part", f"{prefix}your_token_here"]
    for text in near_misses:
        result.near_misses += 1
        result.false_positives += redactor.redact_text(text) != text
    return result


@dataclass
class FamilyTally:
    rules: int = 0
    kinds: set[str] = field(default_factory=set)
    samples: int = 0
    hits: Counter[str] = field(default_factory=Counter)
    near_misses: int = 0
    false_positives: int = 0

    def add(self, result: RuleResult) -> None:
        self.rules += 1
        self.kinds.add(result.kind)
        self.samples += result.samples
        self.hits.update(result.hits)
        self.near_misses += result.near_misses
        self.false_positives += result.false_positives

    def recall(self, context: str | None = None) -> float:
        hits = self.hits[context] if context else sum(self.hits.values())
        per_sample = 1 if context else len(CONTEXTS)
        return hits / (self.samples * per_sample) if self.samples else 0.0


def summarise(results: list[RuleResult]) -> dict[str, Any]:
    families: dict[str, FamilyTally] = defaultdict(FamilyTally)
    for result in results:
        if not result.skipped:
            families[family_of(result.rule_id)].add(result)
    by_kind: dict[str, FamilyTally] = defaultdict(FamilyTally)
    for result in results:
        if not result.skipped:
            by_kind[result.kind].add(result)
            by_kind["all"].add(result)
    return {"families": families, "by_kind": by_kind}


def _row(name: str, tally: FamilyTally) -> dict[str, Any]:
    return {
        "name": name, "rules": tally.rules, "kind": "+".join(sorted(tally.kinds)), "samples": tally.samples,
        "recall_alone": round(tally.recall("alone"), 4),
        "recall_log_line": round(tally.recall("log_line"), 4),
        "recall_as_drawn": round(tally.recall("as_drawn"), 4),
        "recall": round(tally.recall(), 4), "near_misses": tally.near_misses,
        "false_positives": tally.false_positives,
        "false_positive_rate": (
            round(tally.false_positives / tally.near_misses, 4) if tally.near_misses else 0.0
        ),
    }


def print_table(rows: list[dict[str, Any]], title: str) -> None:
    print(title)
    print(f"{'family':<22} {'rules':>5} {'kind':<15} {'n':>5} {'alone':>6} {'log':>6} {'drawn':>6} "
          f"{'recall':>7} FP")
    for row in rows:
        print(
            f"{row['name']:<22} {row['rules']:>5} {row['kind']:<15} {row['samples']:>5} "
            f"{row['recall_alone']:>6.3f} {row['recall_log_line']:>6.3f} {row['recall_as_drawn']:>6.3f} "
            f"{row['recall']:>7.3f} "
            f"{row['false_positives']}/{row['near_misses']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rules", type=Path, required=True, help="gitleaks' config/gitleaks.toml")
    parser.add_argument("--samples", type=int, default=20, help="secrets drawn per rule")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--misses", action="store_true", help="print up to two missed texts per rule")
    args = parser.parse_args()
    config = tomllib.loads(args.rules.read_text())
    global_allowlist = Allowlist.parse(config.get("allowlist", {}))
    generator = rstr.Rstr(random.Random(args.seed))
    redactor = Redactor(RedactionConfig(), Pseudonymizer(DEV_HMAC_KEY))
    results = [
        measure_rule(rule, args.samples, generator, global_allowlist, redactor) for rule in config["rules"]
    ]
    summary = summarise(results)
    family_rows = sorted(
        (_row(name, tally) for name, tally in summary["families"].items()),
        key=lambda row: (row["recall"], row["name"]),
    )
    kind_rows = [_row(name, tally) for name, tally in sorted(summary["by_kind"].items())]
    print_table(family_rows, f"gitleaks rules: {len(results)}, families measured: {len(family_rows)}")
    print()
    print_table(kind_rows, "by kind")
    skipped = [(result.rule_id, result.skipped) for result in results if result.skipped]
    print(f"\nrules not measured ({len(skipped)}):")
    for rule_id, reason in skipped:
        print(f"  {rule_id}: {reason}")
    if args.misses:
        for result in results:
            print(f"  {result.rule_id}: {result.kind} {result.hits} of {result.samples}, "
                  f"FP {result.false_positives}")
            for text in result.missed_examples:
                print(f"  missed {result.rule_id}: {text[:160]!r}")
    if not args.no_write:
        path = Path(__file__).parent / "results" / f"{run_stamp()}-gitleaks-recall.json"
        write_json(path, {
            "command": " ".join(["benchmarks/gitleaks_recall.py", *sys.argv[1:]]),
            "host": host_info(), "samples_per_rule": args.samples, "seed": args.seed,
            "families": family_rows, "by_kind": kind_rows,
            "rules": [
                {"id": result.rule_id, "kind": result.kind, "skipped": result.skipped,
                 "samples": result.samples, "hits": result.hits, "near_misses": result.near_misses,
                 "false_positives": result.false_positives}
                for result in results
            ],
        })
        print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
