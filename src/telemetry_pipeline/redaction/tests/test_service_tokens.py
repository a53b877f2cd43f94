"""Recall and false-positive rate per family of the service-token rules (service_tokens.py).

True positives are made from each rule's own pattern: rstr draws a random string that the
pattern matches (from a seeded random source), which the rule itself confirms, placed in
telemetry-shaped text; a format with a checksum gets a valid one. Near misses, which must be left
alone: the secret replaced by one character repeated and by template variables; for a token that
stands alone, the token cut to half the shortest length its format allows and the format's literal
prefix in prose and placeholders; for a format with a checksum, the token with one character
changed. The whole detector set runs (find), as the redactor does: a secret any detector masks
counts, and so does a near miss any detector touches.

    .venv/bin/pytest -s src/telemetry_pipeline/redaction/tests/test_service_tokens.py
"""

from __future__ import annotations

import importlib
import random
import re
from collections import defaultdict
from collections.abc import Callable

import pytest
import rstr

from telemetry_pipeline.redaction.detectors import _ASSIGNMENT_CHARS, _GATES, Detector, find
from telemetry_pipeline.redaction.service_tokens import (
    BECH32_CHARSET,
    DETECT_SECRETS_PLUGINS,
    OWN_RULES,
    RULES,
    Rule,
    bech32_polymod,
    bech32_valid,
    confirmed,
)
from telemetry_pipeline.redaction.tests._table import TALLY_COLUMNS, Tally, format_table

SEED = 14
# rstr caps every repeat at 100; some patterns are open-ended ({70,}).
importlib.import_module("rstr.xeger").STAR_PLUS_LIMIT = 300
SAMPLES_PER_RULE = 6
MIN_RECALL = 0.99
MAX_FALSE_POSITIVE_RATE = 0.01
# Where tokens reach telemetry: a bare attribute value, a log line, a JSON body.
CONTEXTS = ("{token}", "upload failed: {token} (retrying)", '{{"value": "{token}", "retries": 3}}')
_PARSER = importlib.import_module("re._parser")  # the parser of the running re (sre_parse before 3.11)


def _with_bech32_checksum(token: str) -> str:
    """`token` with its last six characters replaced by its valid Bech32 checksum (as BIP 173's
    encoder makes it: the checksum function over the data and six zeros, xor 1)."""
    body = token[:-6]
    hrp, _, data = body.lower().rpartition("1")
    checksum = bech32_polymod(hrp, [BECH32_CHARSET.index(char) for char in data] + [0] * 6) ^ 1
    tail = "".join(BECH32_CHARSET[checksum >> 5 * (5 - index) & 31] for index in range(6))
    return body + (tail.upper() if body.isupper() else tail)


# A rule's own check -> how to make a drawn token pass it.
CHECKSUMS: dict[Callable[[str], bool], Callable[[str], str]] = {bech32_valid: _with_bech32_checksum}


def _drawn_document(rule: Rule, generator: rstr.Rstr) -> str:
    """A draw of a multi-line document's rule with each open repeat at most 10 times, not 300 (a
    Kubernetes manifest drawn at 300 averaged 90 KB: seconds per sample)."""
    xeger = importlib.import_module("rstr.xeger")
    limit, xeger.STAR_PLUS_LIMIT = xeger.STAR_PLUS_LIMIT, 10
    try:
        return generator.xeger(rule.pattern.pattern)
    finally:
        xeger.STAR_PLUS_LIMIT = limit


def _sample(rule: Rule, generator: rstr.Rstr, context: str) -> tuple[str, tuple[int, int]]:
    """A random string from the rule's pattern in `context`, which the rule confirms there: the
    text and the secret's span."""
    for _ in range(100):
        # A line break drawn for `.` or `\s` becomes a space: telemetry values are mostly one line
        # (not for a rule of a multi-line document, which has a context: a Kubernetes manifest).
        if rule.context is None:
            drawn = generator.xeger(rule.pattern.pattern).replace("\n", " ").replace("\r", " ")
        else:
            drawn = _drawn_document(rule, generator)
        if rule.check is not None:
            drawn = CHECKSUMS[rule.check](drawn)
        text = context.format(token=drawn)
        if rule.context is not None:  # the text the rule also wants around the token ("kind: Secret")
            text = generator.xeger(rule.context.pattern) + "\n" + text
        match = rule.pattern.search(text)
        span = confirmed(rule, match) if match is not None else None
        if span is not None:
            return text, span
    raise AssertionError(f"{rule.id}: no sample from {rule.pattern.pattern!r}")


def _masked(text: str, span: tuple[int, int]) -> bool:
    """Every character of text[span] is masked: no finding leaves part of it in place."""
    start, end = span
    covered = [False] * (end - start)
    for finding in find(text):
        for position in range(max(finding.start, start), min(finding.end, end)):
            covered[position - start] = True
    return all(covered)


def _touched(text: str, span: tuple[int, int]) -> bool:
    """A finding overlaps text[span]. URL credentials do not count: that detector masks the user
    name with the password, whatever the password holds (Cloudant's URL shape)."""
    return any(
        finding.start < span[1] and finding.end > span[0] and finding.detector is not Detector.URL_CREDENTIALS
        for finding in find(text)
    )


def _literals(items) -> list[str]:
    """The runs of literal characters of a parsed pattern, in sequence (not inside branches)."""
    runs: list[str] = [""]
    for op, argument in items:
        if op is _PARSER.LITERAL:
            runs[-1] += chr(argument)
        elif op is _PARSER.SUBPATTERN:
            inner = _literals(argument[-1])
            runs[-1] += inner[0]
            runs.extend(inner[1:])
        elif op is not _PARSER.ASSERT_NOT:
            runs.append("")
    return runs


def _near_misses(rule: Rule, text: str, span: tuple[int, int]) -> list[tuple[str, tuple[int, int]]]:
    """Texts that hold no secret where `text` holds one at `span`, and the span to watch in each."""
    start, end = span
    secret = text[start:end]
    values = ["x" * len(secret), "${" + rule.family.upper() + "_TOKEN}", "{{ ." + rule.family + " }}"]
    match = rule.pattern.search(text)
    assert match is not None
    if rule.pattern.groups == 0 and match.start() == start:  # a token alone, not a value after a name
        # Cut to half the shortest match of the pattern (one character short can still be a token of
        # another rule of the family: GitLab's have several lengths).
        values.append(secret[:_PARSER.parse(rule.pattern.pattern).getwidth()[0] // 2])
        prefix = max(_literals(_PARSER.parse(rule.pattern.pattern)), key=len)
        if len(prefix) >= 3:
            values += [f"keys begin with {prefix} and a random part", f"{prefix}your_token_here",
                       f"{prefix}XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"]
    if rule.check is not None:
        changed = secret[:-3] + ("Q" if secret[-3] != "Q" else "P") + secret[-2:]
        values.append(changed)
    return [(text[:start] + value + text[end:], (start, start + len(value))) for value in values]


def _table(rules: tuple[Rule, ...] = RULES) -> dict[str, Tally]:
    generator = rstr.Rstr(random.Random(SEED))
    tallies: dict[str, Tally] = defaultdict(Tally)
    for rule in rules:
        tally = tallies[rule.family]
        for number in range(SAMPLES_PER_RULE):
            text, span = _sample(rule, generator, CONTEXTS[number % len(CONTEXTS)])
            tally.positives += 1
            tally.hits += _masked(text, span)
        for near_miss, watched in _near_misses(rule, text, span):
            tally.negatives += 1
            tally.false_positives += _touched(near_miss, watched)
    return tallies


def _format(tallies: dict[str, Tally]) -> str:
    total = Tally()
    for tally in tallies.values():
        total.add(tally)
    rows = [tally.row(family) for family, tally in sorted(tallies.items())] + [total.row("all")]
    return (
        f"service-token rules: {len(RULES)} rules, {len(tallies)} families "
        f"({len({rule.family for rule in OWN_RULES})} with rules of our own); "
        "samples drawn from each rule's pattern\n" + format_table((("family", 14), *TALLY_COLUMNS), rows)
    )


@pytest.fixture(scope="module")
def table() -> dict[str, Tally]:
    return _table()


def test_recall_per_family(table: dict[str, Tally], capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print("\n" + _format(table))
    low = [
        f"{family}: {t.hits}/{t.positives}"
        for family, t in table.items() if t.hits / t.positives < MIN_RECALL
    ]
    assert not low, f"secrets left in place (recall below {MIN_RECALL}): {low}"
    # Every configured detect-secrets family built at least one rule.
    assert {family for family, _ in DETECT_SECRETS_PLUGINS.values()} <= set(table)


def test_false_positives_per_family(table: dict[str, Tally]) -> None:
    noisy = [
        f"{family}: {t.false_positives}/{t.negatives}" for family, t in table.items()
        if t.false_positives / t.negatives > MAX_FALSE_POSITIVE_RATE
    ]
    assert not noisy, f"near misses redacted (rate above {MAX_FALSE_POSITIVE_RATE}): {noisy}"


def test_tokens_without_digits_pass_a_gate_or_hold_an_underscore() -> None:
    """find() searches a text for service tokens only when it passes a detector gate, holds an
    underscore or an assignment's first character: every token a rule without digits confirms
    must do one of these."""
    generator = rstr.Rstr(random.Random(SEED))
    letter_rules = [rule for rule in RULES if not rule.needs_digit]
    assert letter_rules
    for rule in letter_rules:
        for _ in range(50):
            text, _span = _sample(rule, generator, "{token}")
            assert "_" in text or _ASSIGNMENT_CHARS.search(text) or any(gate(text) for gate, _ in _GATES), (
                rule.id, text,
            )


def test_bech32_checksum() -> None:
    """The BIP 173 test vector, and the same with one character changed."""
    assert bech32_valid("A12UEL5L")
    assert not bech32_valid("A12UEL5M")
    assert re.fullmatch(r"[a-z0-9]+1[a-z0-9]{6,}", _with_bech32_checksum("abc1qqqqqqqqqqqq"))
    assert bech32_valid(_with_bech32_checksum("abc1qpzry9x8qqqqqq"))


OPENAI_KEY = "sk-proj-Ab3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1eF3hJ5kL7nP9rT3BlbkFJx7Yz9Ab1Cd3Ef5Gh7Ij9Kl1Mn3Op5Qr7St"
NPM_TOKEN = "npm_qT4k9ZrW2mXb7Lp3Nc8Vd1Hs6Gf0Jy5Ae2Ru"
DISCORD_TOKEN = "MTA4NzY1NDMyMTA5ODc2NTQzMg.GhIjKl.Mn0pQr1sTu2vWx3yZa4bCd5eFg6hIj7kLm8nOp9"
# The three services issue 14 found passing through (the values are random, not real keys).
PYPI_TOKEN = "pypi-AgEIcHlwaS5vcmcCJGI0ZDlmYzU1LTk4NjEtNGQ0Ni04ZDg0LTlkNjYzMzE2MzMwNQACKlszLCJi"
SENDGRID_KEY = "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"
TWILIO_KEY = "SK5f3c2b1a0e9d8c7b6a5f4e3d2c1b0a99"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        # A regex that matches a prefix of the token: the rest of the token is masked too.
        (f"OPENAI_API_KEY={OPENAI_KEY}", OPENAI_KEY),
        (f"discord bot login with {DISCORD_TOKEN}", DISCORD_TOKEN),
        # Twilio SIDs written in upper case (our rule; detect-secrets' is lower case only).
        ("twilio key SK5F3C2B1A0E9D8C7B6A5F4E3D2C1B0A99 in use", "SK5F3C2B1A0E9D8C7B6A5F4E3D2C1B0A99"),
        (f"npm publish --token {NPM_TOKEN}", NPM_TOKEN),
        (f"//registry.npmjs.org/:_authToken={NPM_TOKEN}", NPM_TOKEN),
        (f"twine upload -u __token__ -p {PYPI_TOKEN} dist/*", PYPI_TOKEN),
        (f'{{"sendgrid_api_key": "{SENDGRID_KEY}"}}', SENDGRID_KEY),
        (f"mail client: Authorization bearer set from {SENDGRID_KEY}", SENDGRID_KEY),
        (f"twilio sid={TWILIO_KEY} region=us1", TWILIO_KEY),
        (f"TWILIO_API_KEY={TWILIO_KEY}", TWILIO_KEY),
    ],
)
def test_tokens_are_masked_whole(text: str, secret: str) -> None:
    found = [(finding.detector, text[finding.start:finding.end]) for finding in find(text)]
    assert (Detector.SERVICE_TOKEN, secret) in found or (Detector.GENERIC_SECRET, secret) in found, found


@pytest.mark.parametrize(
    "text",
    [
        "handler APCategoryName finished",  # Artifactory's "AP" shape, but a word: no digit
        "TASKa1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6 done",  # "SK" + 32 inside a longer word
        # Telegram's shape, but the alphabet typed out.
        "order 1234567890:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi shipped",
    ],
)
def test_near_misses_are_left_alone(text: str) -> None:
    assert [f for f in find(text) if f.detector is Detector.SERVICE_TOKEN] == []
