"""Recall and false positives of the redactor per gitleaks rule family, on secrets drawn from the
rules of gitleaks' default rule set (vendored: redaction/gitleaks/, see SOURCE.md there).

For every rule, rstr draws secrets from the rule's regex (a seeded random source): the rule's
`secretGroup` (else its longest non-empty group, else the whole match), redrawn until it reaches
the rule's `entropy` and passes its allowlists and the global one. A rule it cannot draw from is
reported, not counted.

Each secret is tried in three contexts: as an attribute value alone; in a log line
`... <name>=<secret> ...` (see `keyword_for`); and the whole string drawn, as gitleaks matches it
(`curl -H ...`, a YAML Secret), in a log line. A context counts only where gitleaks itself reports
the secret there (its rule matches the text and extracts the secret): a bare 32-character blob is
no Adafruit key to gitleaks either, only after a name holding "adafruit". A secret counts as
redacted when no 6-character piece of it survives, past the fixed prefix every drawn secret of the
rule shares.

Draws that are no token of the format the rule names are left out of the measure, each kind with
its reason and the check that rejects it (NOT_A_TOKEN): gitleaks' classes are looser than the
formats (a "JWT" whose header decodes to no JSON, an age key failing its Bech32 checksum).

False positives: the near misses are the secret cut to half the shortest length its pattern
allows, and the prefix all drawn secrets share (3+ characters) in prose and with a placeholder;
any change the redactor makes to them counts.

Used by test_gitleaks_rules.py (the table and per-family floors) and benchmarks/gitleaks_recall.py
(more samples, JSON output).
"""

from __future__ import annotations

import base64
import binascii
import importlib
import math
import os
import random
import re
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import rstr

from telemetry_pipeline.redaction import Redactor
from telemetry_pipeline.redaction.detectors import _jwt
from telemetry_pipeline.redaction.service_tokens import GITLEAKS_CONTEXT_RULES, bech32_valid, python_regex

# rstr caps open repeats at 100; gitleaks has {250,} (1Password) and {100,}.
importlib.import_module("rstr.xeger").STAR_PLUS_LIMIT = 300
DRAWS_PER_SAMPLE = 40
SURVIVING_PIECE = 6  # characters of a secret left in place that make it count as missed
# gitleaks' "keyword = value" template: an assignment operator between the name and the value.
_ASSIGNMENT = r"(?:=|>|:{1,3}=|\|\||:|=>|\?=|,)"
LOG_LINE = "2026-12-06T06:40:00Z INFO client configured {keyword}={secret} region=eu-west-1 attempt=2"
TWO_WORD_FAMILIES = ("new-relic",)
CONTEXTS = ("alone", "log_line", "as_drawn")
_PARSER = importlib.import_module("re._parser")


def _jwt_in_base64(secret: str) -> bool:
    try:
        return _jwt(base64.b64decode(secret + "=" * (-len(secret) % 4)).decode())
    except (binascii.Error, ValueError):
        return False


_PEM = re.compile(
    r"-----BEGIN[A-Z0-9 _-]{0,100}PRIVATE KEY(?: BLOCK)?-----[A-Za-z0-9+/=\s:,.\\-]{64,}"
    r"-----END[A-Z0-9 _-]{0,100}PRIVATE KEY(?: BLOCK)?-----"
)

def _fullmatch(pattern: str) -> Callable[[str], bool]:
    return lambda secret: re.fullmatch(pattern, secret) is not None


# Rule id -> (why a draw failing the check is no token of that format, the check). Each check is
# the format's own structure, as its specification gives it.
NOT_A_TOKEN: dict[str, tuple[str, Callable[[str], bool]]] = {
    "jwt": ("header is no base64url JSON with alg or typ (RFC 7519)", _jwt),
    "jwt-base64": ("no JWT inside the base64 (RFC 7519)", _jwt_in_base64),
    "age-secret-key": ("Bech32 checksum fails (BIP 173)", bech32_valid),
    "private-key": (
        "no PEM: body not base64 text or no END line (RFC 7468)",
        lambda secret: _PEM.fullmatch(secret) is not None,
    ),
    # Flutterwave's keys are hex; gitleaks' class [a-h0-9] also admits g and h.
    **dict.fromkeys(
        ("flutterwave-secret-key", "flutterwave-public-key", "flutterwave-encryption-key"),
        ("not hex (Flutterwave's keys are)", _fullmatch(r"FLW\w+-[0-9a-fA-F]+(?:-X)?")),
    ),
    # SendGrid keys: "SG.", a 22-character key id, ".", a 43-character secret (base64url).
    "sendgrid-api-token": ("not SG.<22>.<43> base64url", _fullmatch(r"SG\.[\w-]{22}\.[\w-]{43}")),
    # gitleaks' rule also takes any bare 40 hex digits: the shape of a git commit hash, which the
    # negatives tests keep (test_detectors); Sourcegraph's tokens start "sgp_".
    "sourcegraph-access-token": ("bare 40 hex: a commit hash's shape, no sgp_", _fullmatch(r"sgp_.+")),
}


# Rules whose regex rstr cannot draw from in reasonable time (nested lazy `(?:.|\s){0,200}?`
# backtracks for seconds per draw): measured on gitleaks' own true positives instead, from its
# cmd/generate/config/rules/kubernetes.go at commit 1592c1c7 (MIT, see ../gitleaks/LICENSE).
LITERAL_CASES: dict[str, tuple[str, ...]] = {
    "kubernetes-secret-yaml": (
        "apiVersion: v1\ndata:\n\tpassword: UyFCXCpkJHpEc2I9\n\tusername: YWRtaW4=\nkind: Secret\n"
        "metadata:\n\tcreationTimestamp: '2022-06-28T17:44:13Z'\n\tname: db-user-pass\n"
        "\tnamespace: default\ntype: Opaque",
        "apiVersion: v1\nkind: secret\ndata:\n\textra: YWRtaW46cGFzc3dvcmQ=\nmetadata:\n"
        "\tname: secret-sa-sample\n\tannotations:\n\t\tkubernetes.io/service-account.name: 'sa-name'",
        "apiVersion: \"v1\"\nkind: \"Secret\"\ndata:\n\tpassword: \"UyFCXCpkJHpEc2I9\"\n"
        "\tusername: \"YWRtaW4=\"\nmetadata:\n\tname: \"db-user-pass\"\n\tnamespace: \"default\"\n"
        "type: \"Opaque\"",
    ),
}


class SeededRstr(rstr.Rstr):
    """rstr's generator, with negated classes (`[^"]`) drawn from a sorted list: rstr draws them
    from a set, whose order follows the interpreter's hash seed, so the draws were not repeatable."""

    def _handle_in(self, value: Any) -> Any:
        candidates = list(chain(*(self._handle_state(item) for item in value)))
        if candidates[0] is False:
            candidates = sorted(set(string.printable).difference(candidates[1:]))
        return self._random.choice(candidates)


def shannon_entropy(text: str) -> float:
    """Bits per character, as gitleaks computes it for its `entropy` threshold."""
    counts = Counter(text)
    return -sum(count / len(text) * math.log2(count / len(text)) for count in counts.values())


def family_of(rule_id: str) -> str:
    return next((name for name in TWO_WORD_FAMILIES if rule_id.startswith(name)), rule_id.split("-", 1)[0])


def compiled(go_regex: str) -> re.Pattern[str]:
    return re.compile(*python_regex(go_regex))


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
            [compiled(regex) for regex in table.get("regexes", [])], table.get("regexTarget", "secret"),
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
    drawn: int = 0
    not_tokens: int = 0
    samples: Counter[str] = field(default_factory=Counter)  # context -> secrets gitleaks reports there
    hits: Counter[str] = field(default_factory=Counter)
    near_misses: int = 0
    false_positives: int = 0
    missed_examples: list[str] = field(default_factory=list)  # rule-drawn, random: not real secrets


def draw_secrets(
    rule: dict[str, Any], generator: rstr.Rstr, count: int, global_allowlist: Allowlist
) -> tuple[list[tuple[str, str]], str]:
    """`count` secrets drawn from the rule's regex that gitleaks would report, each with the whole
    string drawn, or a reason why not."""
    try:
        pattern = compiled(rule["regex"])
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
    """The rule's `secretGroup`; after a name and an assignment, the value; else its longest group
    where that is the secret rather than part of the structure (named alternatives, a repeated
    piece): 16+ characters or a third of the match."""
    if rule.get("secretGroup"):
        return match.group(rule["secretGroup"]) or ""
    if _ASSIGNMENT in rule["regex"] or rule["id"] in GITLEAKS_CONTEXT_RULES:
        # "name = value" and a value in its context (curl -H "..."): the value, the group ending
        # last (however short), not the whole match; as the rule is loaded (service_tokens).
        spans = [match.span(group) for group in range(1, pattern.groups + 1) if match.start(group) != -1]
        if spans:
            start, end = max(spans, key=lambda span: (span[1], -span[0]))
            return match.string[start:end]
    longest = max((group for group in match.groups() if group), key=len, default="")
    whole = match.group(0)
    if pattern.groupindex or len(longest) < min(16, len(whole) / 3):
        return whole
    return longest


def reported(rule: dict[str, Any], pattern: re.Pattern[str], text: str, secret: str) -> bool:
    """Whether gitleaks' rule reports `secret` in `text`."""
    return any(_secret(rule, pattern, match) == secret for match in pattern.finditer(text))


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
    pattern = compiled(rule["regex"])
    if rule["id"] in LITERAL_CASES:
        matches = [pattern.search(text) for text in LITERAL_CASES[rule["id"]]]
        secrets = [(_secret(rule, pattern, match), match.string) for match in matches if match is not None]
    else:
        secrets, result.skipped = draw_secrets(rule, generator, samples, global_allowlist)
    if result.skipped:
        return result
    prefix = os.path.commonprefix([secret for secret, _ in secrets])  # noqa: RUF071 (strings, not paths)
    if _ASSIGNMENT in rule["regex"] and len(prefix) < 3:
        result.kind = "keyword"
    not_a_token = NOT_A_TOKEN.get(rule["id"])
    for secret, drawn in secrets:
        result.drawn += 1
        if not_a_token is not None and not not_a_token[1](secret):
            result.not_tokens += 1
            continue
        line = LOG_LINE.format(keyword=keyword_for(rule, pattern, secret), secret=secret)
        for context, text in zip(CONTEXTS, (secret, line, f"request failed: {drawn}"), strict=True):
            if not reported(rule, pattern, text, secret):
                continue
            result.samples[context] += 1
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
    drawn: int = 0
    not_tokens: int = 0
    samples: Counter[str] = field(default_factory=Counter)
    hits: Counter[str] = field(default_factory=Counter)
    near_misses: int = 0
    false_positives: int = 0

    def add(self, result: RuleResult) -> None:
        self.rules += 1
        self.kinds.add(result.kind)
        self.drawn += result.drawn
        self.not_tokens += result.not_tokens
        self.samples.update(result.samples)
        self.hits.update(result.hits)
        self.near_misses += result.near_misses
        self.false_positives += result.false_positives

    def recall(self, context: str | None = None) -> float:
        """Over the contexts gitleaks reports the secret in; nan where it reports none."""
        hits = self.hits[context] if context else sum(self.hits.values())
        samples = self.samples[context] if context else sum(self.samples.values())
        return hits / samples if samples else float("nan")

    def false_positive_rate(self) -> float:
        return self.false_positives / self.near_misses if self.near_misses else 0.0


def measure(
    config: dict[str, Any], redactor: Redactor, samples: int, seed: int
) -> tuple[list[RuleResult], dict[str, FamilyTally]]:
    """Every rule of `config` (gitleaks' TOML, parsed) measured, and the tally per family."""
    global_allowlist = Allowlist.parse(config.get("allowlist", {}))
    generator = SeededRstr(random.Random(seed))
    results = [measure_rule(rule, samples, generator, global_allowlist, redactor) for rule in config["rules"]]
    families: dict[str, FamilyTally] = {}
    for result in results:
        if not result.skipped:
            families.setdefault(family_of(result.rule_id), FamilyTally()).add(result)
    return results, families


TABLE_COLUMNS = (
    ("family", 16), ("rules", 5), ("kind", 14), ("drawn", 5), ("not tokens", 10), ("alone", 6), ("log", 6),
    ("drawn", 6), ("recall", 6), ("fp", 6), ("fp rate", 7),
)


def table_row(name: str, tally: FamilyTally) -> list[object]:
    return [
        name, tally.rules, "+".join(sorted(tally.kinds)), tally.drawn, tally.not_tokens,
        *(tally.recall(context) for context in CONTEXTS), tally.recall(),
        f"{tally.false_positives}/{tally.near_misses}", tally.false_positive_rate(),
    ]

