"""Recall and false-positive rate per gitleaks rule family (gitleaks' default rules, vendored in
redaction/gitleaks/), on secrets drawn from each rule's regex with a fixed seed: see
gitleaks_measure.py for what is drawn, which contexts count and which draws are no tokens.

    .venv/bin/pytest -s src/telemetry_pipeline/redaction/tests/test_gitleaks_rules.py

The goal is 0.99 for every family. FLOORS are the families below it, each at what the redactor
reaches today (the draws are seeded, so the figure is exact): a change that loses a secret fails.
"""

from __future__ import annotations

import random

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, TracesData

from telemetry_pipeline.redaction import RedactionConfig, Redactor
from telemetry_pipeline.redaction.config import DEV_HMAC_KEY
from telemetry_pipeline.redaction.pseudonym import Pseudonymizer
from telemetry_pipeline.redaction.service_tokens import gitleaks_config
from telemetry_pipeline.redaction.tests._table import format_table
from telemetry_pipeline.redaction.tests.gitleaks_measure import (
    CONTEXTS,
    LITERAL_CASES,
    LOG_LINE,
    NOT_A_TOKEN,
    TABLE_COLUMNS,
    Allowlist,
    FamilyTally,
    RuleResult,
    SeededRstr,
    compiled,
    draw_secrets,
    keyword_for,
    measure,
    table_row,
)

SEED = 14
SAMPLES_PER_RULE = 10
GOAL = 0.99
# Family -> the recall it reaches today, where below GOAL, and why.
FLOORS: dict[str, float] = {
    # gitleaks' generic rule takes a secret word anywhere in a name ("...authqs0Nu || value");
    # GENERIC_SECRET wants it to end the name, so that "key_length" and "accessor" stay.
    "generic": 0.5,
    # Drawn tokens ending in "-" or a 2-character tail, which the Slack check takes for placeholders.
    "slack": 0.985,
}
# Family -> near misses it redacts today (the prefix in prose or with a placeholder).
FALSE_POSITIVE_CEILINGS: dict[str, int] = {
    "slack": 7, "1password": 3, "artifactory": 3, "discord": 2, "vault": 3,
}


@pytest.fixture(scope="module")
def measured() -> tuple[list[RuleResult], dict[str, FamilyTally]]:
    redactor = Redactor(RedactionConfig(), Pseudonymizer(DEV_HMAC_KEY))
    return measure(gitleaks_config(), redactor, SAMPLES_PER_RULE, SEED)


def test_recall_per_family(
    measured: tuple[list[RuleResult], dict[str, FamilyTally]], capsys: pytest.CaptureFixture[str]
) -> None:
    results, families = measured
    rows = sorted((table_row(name, tally) for name, tally in families.items()), key=lambda row: row[0])
    reached = [name for name, tally in families.items() if tally.recall() >= GOAL]
    with capsys.disabled():
        print(f"\ngitleaks rules: {len(results)}, families: {len(families)}, at {GOAL}+: {len(reached)}; "
              f"recall over {'/'.join(CONTEXTS)} where gitleaks reports the secret (nan: nowhere)")
        print(format_table(TABLE_COLUMNS, rows))
        for result in results:
            if result.skipped:
                print(f"not measured: {result.rule_id}: {result.skipped}")
    low = [
        f"{name}: {tally.recall():.3f} < {FLOORS.get(name, GOAL)}" for name, tally in families.items()
        if tally.recall() < FLOORS.get(name, GOAL) - 1e-9
    ]
    assert not low, f"families below their floor: {low}"
    # A floor is kept tight: a family that got better must have its floor raised (or removed).
    loose = [name for name, floor in FLOORS.items() if families[name].recall() > floor + 0.01]
    assert not loose, f"floors below what the redactor now reaches (raise them): {loose}"


def test_false_positives_per_family(measured: tuple[list[RuleResult], dict[str, FamilyTally]]) -> None:
    _, families = measured
    noisy = [
        f"{name}: {tally.false_positives}/{tally.near_misses}" for name, tally in families.items()
        if tally.false_positives > FALSE_POSITIVE_CEILINGS.get(name, 0)
    ]
    assert not noisy, f"near misses redacted beyond the ceiling: {noisy}"


def test_every_family_is_measured_somewhere(
    measured: tuple[list[RuleResult], dict[str, FamilyTally]],
) -> None:
    """A family is left out of the recall only where every draw is no token (NOT_A_TOKEN): then
    the real token of that format must be found (test_draws_left_out_are_no_tokens)."""
    results, families = measured
    unmeasured = {name for name, tally in families.items() if sum(tally.samples.values()) == 0}
    excluded_rules = {
        result.rule_id.split("-", 1)[0] for result in results if result.not_tokens == result.drawn
    }
    assert unmeasured <= excluded_rules, unmeasured - excluded_rules
    assert [result.rule_id for result in results if result.skipped] == ["pkcs12-file"]  # a file-path rule


# A real token of each format whose gitleaks draws are left out, found by the redactor; and a draw
# of gitleaks' class the format's check rejects.
REAL_AND_DRAWN = {
    "jwt": (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"
        ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "eyLEOGfKR4Ulg9TM1o8yvjeCFrSJvLq7Zz.ey2g0qfxti2AsqqHLZCb0bDOF4a.UvWvgqU2zHf6rBF12N",
    ),
    "age-secret-key": (
        "AGE-SECRET-KEY-1QQPZRY9X8GF2TVDW0S3JN54KHCE6MUA7LQPZRY9X8GF2TVDW0S3JN54KHWESNNC",
        "AGE-SECRET-KEY-1L429W03S7M6LJMUV9WKTXPPQ6HPSZ2SGCGK4XHH5HCQ4WR34QW8KUXTAM9",
    ),
    "sendgrid-api-token": (
        "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",
        "SG.v80xvx35e=yzijyr-59ti6mtk4gbnau8q5c_3a4wa7im7vywie8r-71rx33xyaonr0",
    ),
    "flutterwave-secret-key": (
        "FLWSECK_TEST-3c4b5e1d7f9a2b8c6d0e4f1a2b3c4d5e-X",
        "FLWSECK_TEST-9ff1288c7h07e13293hhf2f189bd1ef8-X",
    ),
}


@pytest.mark.parametrize("rule_id", sorted(REAL_AND_DRAWN))
def test_draws_left_out_are_no_tokens(rule_id: str) -> None:
    real, drawn = REAL_AND_DRAWN[rule_id]
    _, is_token = NOT_A_TOKEN[rule_id]
    assert is_token(real) and not is_token(drawn)
    redactor = Redactor(RedactionConfig(), Pseudonymizer(DEV_HMAC_KEY))
    assert real[-12:] not in redactor.redact_text(f"upstream said {real} twice")


@pytest.mark.parametrize(
    "text",
    [
        # The structure telemetry carries, after a provider's name (GITLEAKS_STRUCTURAL_NAMES).
        "datadog.git.commit.sha=8f14e45fceea167a5a36dedd4bea2543a1b2c3d4",
        "bitbucket.trace_id=8f14e45fceea167a5a36dedd4bea2543",
        "okta.domain=dev-123456.okta.com",
        "twitter.user_id: 1234567890123456789",
        "confluent.cluster.id=lkc-abc123",
        'curl -H "Accept: application/json" https://api.example.com/v1/items',
        # A ConfigMap's data, and a Secret's empty or templated values (gitleaks' false positives).
        "kind: ConfigMap\ndata:\n  config: YWRtaW46cGFzc3dvcmQ=\n",
        'apiVersion: v1\nkind: Secret\ntype: Opaque\ndata:\n  htpasswd: ""\n',
        "apiVersion: v1\nkind: Secret\ndata:\n  password: {{ .Values.Password }}\n",
        "kind: ExternalSecret\nspec:\n  data:\n    - secretKey: api-key\n",
    ],
)
def test_provider_names_before_structure_are_left_alone(text: str) -> None:
    redactor = Redactor(RedactionConfig(), Pseudonymizer(DEV_HMAC_KEY))
    assert redactor.redact_text(text) == text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("datadog_app=8f14e45fceea167a5a36dedd4bea2543a1b2c3d4", "8f14e45fceea167a5a36dedd4bea2543a1b2c3d4"),
        ('"adafruit.io": "zq7w0xk2pplr9tnb4svd8yhf3mgc1jeu"', "zq7w0xk2pplr9tnb4svd8yhf3mgc1jeu"),
        ('curl -H "Authorization: Token 9f8e7d6c5b4a3928170" https://x', "9f8e7d6c5b4a3928170"),
        ('<add key="ClearTextPassword" value="hunter2!x%9Q" />', "hunter2!x%9Q"),
    ],
)
def test_secrets_after_a_provider_name_or_in_context_are_redacted(text: str, secret: str) -> None:
    redactor = Redactor(RedactionConfig(), Pseudonymizer(DEV_HMAC_KEY))
    assert secret not in redactor.redact_text(text)


def _redacted_in_a_span(redactor: Redactor, text: str) -> str:
    """`text` as a span attribute, redacted as the core calls it: with the serialized message, so
    the prefilter (one Hyperscan pass over the bytes) decides whether the span is visited."""
    traces = TracesData(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[
        Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="GET /x", attributes=[
            KeyValue(key="app.detail", value=AnyValue(string_value=text)),
        ]),
    ])])])
    redactor.redact(traces, traces.SerializeToString())
    return traces.resource_spans[0].scope_spans[0].spans[0].attributes[0].value.string_value


def test_the_prefilter_lets_every_rule_through() -> None:
    """Each rule's prefilter pattern (service_tokens.loose_patterns) finds what the rule finds: a
    drawn secret in a log line is redacted the same in a span as by redact_text."""
    config = gitleaks_config()
    allowlist = Allowlist.parse(config["allowlist"])
    generator = SeededRstr(random.Random(SEED))
    redactor = Redactor(RedactionConfig(), Pseudonymizer(DEV_HMAC_KEY))
    differ = []
    for rule in config["rules"]:
        if "regex" not in rule:
            continue
        texts = list(LITERAL_CASES.get(rule["id"], ()))
        if not texts:
            pattern = compiled(rule["regex"])
            for secret, drawn in draw_secrets(rule, generator, 2, allowlist)[0]:
                texts += [LOG_LINE.format(keyword=keyword_for(rule, pattern, secret), secret=secret), drawn]
        differ += [
            rule["id"] for text in texts if _redacted_in_a_span(redactor, text) != redactor.redact_text(text)
        ]
    assert not differ, f"redacted differently behind the prefilter: {sorted(set(differ))}"
