"""Recall and false-positive rate per entity type on the peer corpus (tests/data/README.md).

Each string is planted in a log body (LogsData) and in a span attribute (TracesData) and run
through the Redactor, exactly as the core calls it (with the serialized message, so the
prefilter decides which records are visited). A positive is a hit when every expected
span's text is gone from both outputs; a negative is a false positive when either output differs
from the planted text.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, LogsData, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, TracesData

from telemetry_pipeline.redaction import RedactionConfig, Redactor
from telemetry_pipeline.redaction.pseudonym import Pseudonymizer
from telemetry_pipeline.redaction.tests._table import TALLY_COLUMNS, Tally, format_table

CORPUS = Path(__file__).parent / "data" / "pii-peer-corpus.jsonl"
# Structural in telemetry (timestamps, URLs are what spans are made of): not redacted.
NOT_CLAIMED = ("DATE_TIME", "URL")
# Personal data where a false positive costs analysis value; secrets lean towards over-redaction.
PRECISE_TYPES = ("EMAIL_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS", "JWT")
WEAK_SCORE = 0.4
ATTRIBUTE = "app.detail"  # neither allowed nor secret by name: the value is scanned


@dataclass
class CorpusTally(Tally):
    peer_rejects_redacted: int = 0  # gitleaks fps by entropy / allowlist / stopword that we redact


def _rows() -> list[dict]:
    return [orjson.loads(line) for line in CORPUS.read_bytes().splitlines() if line.strip()]


def _is_positive(row: dict) -> bool:
    scores = row.get("presidio_scores", [])
    return bool(row["expected_spans"]) and all(score >= WEAK_SCORE for score in scores)


def _counted(row: dict) -> bool:
    if row["entity"] in NOT_CLAIMED or row.get("params"):
        return False
    # Presidio's weak guesses (a bare 9-digit number as SSN) are neither positives nor negatives.
    return _is_positive(row) or not row["expected_spans"]


def _redacted_outputs(redactor: Redactor, text: str) -> tuple[str, str]:
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="corpus"))])
    logs = LogsData(resource_logs=[ResourceLogs(resource=resource, scope_logs=[ScopeLogs(log_records=[
        LogRecord(body=AnyValue(string_value=text)),
    ])])])
    traces = TracesData(resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=[
        Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="GET /corpus", attributes=[
            KeyValue(key=ATTRIBUTE, value=AnyValue(string_value=text)),
        ]),
    ])])])
    # With the serialized message, as the core calls it: the prefilter must let every finding through.
    redactor.redact(logs, logs.SerializeToString())
    redactor.redact(traces, traces.SerializeToString())
    body = logs.resource_logs[0].scope_logs[0].log_records[0].body.string_value
    attribute = traces.resource_spans[0].scope_spans[0].spans[0].attributes[0].value.string_value
    return body, attribute


@pytest.fixture(scope="module")
def table() -> dict[str, CorpusTally]:
    redactor = Redactor(RedactionConfig(), Pseudonymizer(b"corpus-test-key-0123456789"))
    tallies: dict[str, CorpusTally] = {}
    for row in filter(_counted, _rows()):
        tally = tallies.setdefault(row["entity"], CorpusTally())
        text = row["text"]
        outputs = _redacted_outputs(redactor, text)
        if row["expected_spans"]:
            tally.positives += 1
            expected = [text[start:end] for start, end in row["expected_spans"]]
            tally.hits += all(span not in output for span in expected for output in outputs)
        else:
            tally.negatives += 1
            changed = any(output != text for output in outputs)
            tally.false_positives += changed
            reason = row.get("fp_reason", "")
            tally.peer_rejects_redacted += changed and any(
                word in reason for word in ("entropy", "allowlist", "stopword")
            )
    return tallies


def _format(tallies: dict[str, CorpusTally]) -> str:
    columns = (("entity", 24), *TALLY_COLUMNS, ("gitleaks-rejected redacted", 26))
    rows = [[*tally.row(entity), tally.peer_rejects_redacted] for entity, tally in sorted(tallies.items())]
    return format_table(columns, rows)


def test_recall_per_type(table: dict[str, CorpusTally], capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print("\n" + _format(table))
    low = [
        f"{entity}: {tally.hits}/{tally.positives}"
        for entity, tally in table.items() if tally.positives and tally.hits / tally.positives < 0.99
    ]
    assert not low, f"recall below 0.99: {low}"
    # Types the corpus holds only negatives of (passports, postcodes: formats too weak alone).
    assert sum(1 for tally in table.values() if tally.positives) >= 60


def test_false_positive_rate_of_personal_data_types(table: dict[str, CorpusTally]) -> None:
    for entity in PRECISE_TYPES:
        tally = table[entity]
        assert tally.negatives > 0
        assert tally.false_positives / tally.negatives <= 0.05, f"{entity}: {tally}"


def test_corpus_rows_are_planted_and_counted() -> None:
    counted = Counter(row["entity"] for row in filter(_counted, _rows()))
    assert not set(counted) & set(NOT_CLAIMED)
    assert {"FI_PERSONAL_IDENTITY_CODE", "UK_NINO", "IN_AADHAAR", "MAC_ADDRESS", "CRYPTO"} <= set(counted)
    # The weak Presidio guesses stay out: "078051121" is a 0.05 SSN guess.
    assert not any(row["text"] == "078051121" for row in filter(_counted, _rows()))
