"""The prefilter (redaction/prefilter.py): which records of a serialized message the redactor visits.

The property that matters: redacting with the payload gives exactly what redacting without it
gives. Checked on generated traffic, on the peer corpus planted among clean spans, and on the
cases the prefilter has to get right on its own (keys with rules, Unicode digits and case folds,
nesting beyond max_depth, payloads that do not describe the message).
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import orjson
import pytest
import rstr
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, LogsData, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status, TracesData

from telemetry_pipeline.generate import GeneratorConfig, iter_messages
from telemetry_pipeline.otlp import Encoding, Message, Signal, encode, message_to_json
from telemetry_pipeline.redaction import (
    Action,
    Detector,
    RedactionConfig,
    RedactionCounts,
    RedactionError,
    Redactor,
)
from telemetry_pipeline.redaction.detectors import find
from telemetry_pipeline.redaction.national_ids import DIGIT_LED, DIGIT_RUN, DIGIT_RUN_EXCEPTIONS, FAMILIES
from telemetry_pipeline.redaction.prefilter import (
    DIGIT_BLOCKS,
    FOLDED_LETTERS,
    LOG_RECORD,
    SPAN,
    Prefilter,
)
from telemetry_pipeline.redaction.pseudonym import Pseudonymizer

CORPUS = Path(__file__).parent / "data" / "pii-peer-corpus.jsonl"
KEY = b"unit-test-key-0123456789abcdef"
CLEAN_ATTRIBUTES = [("http.route", "/api/v1/session"), ("db.query.text", "GET session:{id}"),
                    ("app.shard", "7"), ("url.path", "/checkout/api/items"), ("app.note", "api key rotation")]


def _redactor(config: RedactionConfig | None = None) -> Redactor:
    return Redactor(config or RedactionConfig(), Pseudonymizer(KEY))


def _kv(key: str, value: str | AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value if isinstance(value, AnyValue) else AnyValue(string_value=value))


def _clean_span(number: int) -> Span:
    return Span(
        trace_id=number.to_bytes(16, "big"), span_id=number.to_bytes(8, "big"), name="GET /api/session",
        start_time_unix_nano=1_767_225_600_000_000_000 + number,
        attributes=[_kv(key, value) for key, value in CLEAN_ATTRIBUTES],
    )


def _traces(spans: list[Span], per_scope: int = 100) -> TracesData:
    scopes = [ScopeSpans(spans=spans[start:start + per_scope]) for start in range(0, len(spans), per_scope)]
    resource = Resource(attributes=[_kv("service.name", "checkout")])
    return TracesData(resource_spans=[ResourceSpans(resource=resource, scope_spans=scopes[:2]),
                                      ResourceSpans(resource=resource, scope_spans=scopes[2:])])


def _both_ways(message: Message, config: RedactionConfig | None = None) -> tuple[Message, RedactionCounts]:
    """Redact a copy without and one with the payload; assert they agree; return the result."""
    payload = encode(message, Encoding.PROTO)
    full, prefiltered = type(message)(), type(message)()
    full.CopyFrom(message)
    prefiltered.CopyFrom(message)
    full_counts = _redactor(config).redact(full)
    prefiltered_counts = _redactor(config).redact(prefiltered, payload)
    assert message_to_json(prefiltered) == message_to_json(full)
    assert prefiltered_counts == full_counts
    return prefiltered, prefiltered_counts


def _visited(message: Message, config: RedactionConfig | None = None) -> list[list[int]]:
    config = config or RedactionConfig()
    payload = encode(message, Encoding.PROTO)
    kind = SPAN if isinstance(message, TracesData) else LOG_RECORD
    selection = Prefilter(config, _redactor(config)._has_key_rule).select(payload, kind)
    assert selection is not None
    return [[index for index, _parts in scope] for scope in selection.hits]


# -- the property, on generated traffic and on the corpus ---------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
def test_prefiltered_equals_full_on_generated_traffic(seed: int) -> None:
    config = GeneratorConfig(seed=seed, pii_share=0.2, spans_per_message=200, logs_per_message=200)
    messages = [m for m, _ in zip(iter_messages(config), range(60), strict=False) if not m.is_garbage]
    assert {m.signal for m in messages} >= {Signal.TRACES, Signal.LOGS}
    skipped = 0
    for generated in messages:
        if generated.signal is Signal.METRICS:
            continue
        _both_ways(generated.message)
        skipped += generated.records - sum(map(len, _visited(generated.message)))
    assert skipped > 0  # the prefilter does skip records, or this test shows nothing


def test_prefiltered_equals_full_on_the_corpus_planted_among_clean_spans() -> None:
    rows = [orjson.loads(line) for line in CORPUS.read_bytes().splitlines() if line.strip()]
    texts = [row["text"] for row in rows]
    for start in range(0, len(texts), 50):
        spans = []
        for number, text in enumerate(texts[start:start + 50]):
            spans += [_clean_span(3 * number), _clean_span(3 * number + 1)]
            planted = _clean_span(3 * number + 2)
            planted.attributes.append(_kv("app.detail", text))
            planted.events.add(name="note").attributes.append(_kv("app.detail", text))
            spans.append(planted)
        _both_ways(_traces(spans))
        logs = LogsData(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[
            LogRecord(body=AnyValue(string_value=text)) for text in texts[start:start + 50]])])])
        _both_ways(logs)


def test_every_detector_finding_is_a_prefilter_hit() -> None:
    """Each corpus string that the detectors find something in, alone in one span among clean
    ones, is visited; so are Unicode digits and case folds, which Python's re matches."""
    rows = [orjson.loads(line) for line in CORPUS.read_bytes().splitlines() if line.strip()]
    unicode_cases = [
        "SSN \uff18\uff15\uff11-19-0070",  # fullwidth digits
        "call \u0664\u0661\u0665-555-0132 now",  # Arabic-Indic digits
        "from 10.0.0.\u0661 on",
        "api_to\u212aen=ghp_gn3qg6UOcdEZ5EyscioeZIiDWnqO7pDcwi9I",  # Kelvin sign
        "pa\u017f\u017fword=Xk9fQ2mZp7Lw4R",  # long s
        "Bearer\u00a0abcdefghijklmnop1234",
        "Basic\u2003dXNlcjpwYXNzd29yZA==",
    ]
    texts = [row["text"] for row in rows] + unicode_cases
    assert all(find(text) for text in unicode_cases)
    for text in texts:
        if not find(text):
            continue
        planted = _clean_span(2)
        planted.attributes.append(_kv("app.detail", text))
        assert _visited(_traces([_clean_span(1), planted, _clean_span(3)])) == [[1]], text


def test_pii_in_span_k_of_many_is_visited_and_redacted() -> None:
    for k in (0, 1, 99, 100, 250, 299):
        spans = [_clean_span(number) for number in range(300)]
        spans[k].attributes.append(_kv("app.contact", "write to anna.meyer42@example.com"))
        message = _traces(spans)
        visited = [(scope, index) for scope, hits in enumerate(_visited(message)) for index in hits]
        assert visited == [(k // 100, k % 100)]
        redacted, counts = _both_ways(message)
        assert counts == {("checkout", "email"): 1}
        assert "anna.meyer42" not in str(redacted)


# -- keys, names, depth ----------------------------------------------------------------------------


def test_keys_with_rules_are_visited_wherever_they_are_and_words_in_values_are_not() -> None:
    spans = [_clean_span(number) for number in range(10)]
    spans[1].attributes.append(_kv("enduser.id", "user-7"))  # person key: hashed
    spans[2].attributes.append(_kv("X-Api-Key", "not-even-secret-looking"))  # secret key by name
    spans[3].attributes.append(_kv("app.payload", AnyValue(kvlist_value=KeyValueList(
        values=[_kv("session_id", "abc")]))))  # nested
    spans[4].attributes.append(_kv("app." + "x" * 140 + "_token", "abc"))  # a key of 150 bytes
    spans[5].events.add(name="login").attributes.append(_kv("user.email", "someone"))
    spans[6].attributes.append(_kv("app.session", "\n" * 3))  # a newline in a value: header-like bytes
    spans[6].attributes.append(_kv("\n\nsession", "x"))  # newlines inside a key with a rule
    spans[7].attributes.append(KeyValue(key="Session"))  # no value: dropped if secret keys are
    spans[7].attributes.append(_kv("app.shard", "8"))
    spans[7].attributes.append(_kv("token", "x"))  # a whole key: the word after its length byte
    spans[7].attributes.append(_kv("secret._ -", "x"))  # separators after the last word
    spans[7].attributes.append(_kv("password" + "_" * 130, "x"))  # a 138-byte key: two length bytes
    # Values that are keys with a rule, as strings and as a map key's value.
    spans[8].attributes.append(_kv("db.collection.name", "session"))
    # The word in a value, after a slash or inside a word: no key ends that way.
    spans[9].attributes.append(_kv("url.path", "/v1/session"))
    spans[9].attributes.append(_kv("app.note", "tokens/sessionless"))
    spans[8].attributes.append(_kv("code.function.name", "verify_password"))
    nested = AnyValue(kvlist_value=KeyValueList(values=[_kv("app.k", "token")]))
    spans[8].attributes.append(_kv("app.map", nested))
    message = _traces(spans)
    assert _visited(message) == [[1, 2, 3, 4, 5, 6, 7]]  # span 0, 8 and 9 only hold words in values
    _both_ways(message)
    _both_ways(message, RedactionConfig(secret_key_action=Action.DROP))
    rules = RedactionConfig(key_rules={"app.shard": Action.MASK})
    assert _visited(message, rules) == [list(range(10))]
    _both_ways(message, rules)


def test_where_keys_can_be_follows_the_otlp_field_numbers() -> None:
    def number(message: type, name: str) -> int:
        return int(message.DESCRIPTOR.fields_by_name[name].number)

    key_value = SPAN.keys[number(Span, "attributes")]
    any_value = key_value[number(KeyValue, "value")]
    assert key_value[number(KeyValue, "key")] is None
    assert any_value[number(AnyValue, "kvlist_value")] == {number(KeyValueList, "values"): key_value}
    assert any_value[number(AnyValue, "array_value")] == {number(ArrayValue, "values"): any_value}
    assert SPAN.keys == {
        SPAN.attributes: key_value,
        number(Span, "events"): {number(Span.Event, "attributes"): key_value},
        number(Span, "links"): {number(Span.Link, "attributes"): key_value},
    }
    assert SPAN.attributes == number(Span, "attributes")
    assert LOG_RECORD.attributes == number(LogRecord, "attributes")
    assert LOG_RECORD.keys == {LOG_RECORD.attributes: key_value, number(LogRecord, "body"): any_value}
    assert SPAN.scanned == {number(Span, name) for name in ("name", "events", "links", "status")}
    assert LOG_RECORD.scanned == {number(LogRecord, "body")}


def test_span_names_status_and_events_are_scanned() -> None:
    spans = [_clean_span(number) for number in range(4)]
    spans[1].name = "GET /users/anna.meyer42@example.com"
    spans[2].status.CopyFrom(Status(message="card 4012 8888 8888 1881 declined"))
    spans[3].events.add(name="retry for 203.0.113.7")
    message = _traces(spans)
    assert _visited(message) == [[1, 2, 3]]
    _both_ways(message)


def test_hits_in_ids_timestamps_and_trace_state_visit_nothing() -> None:
    spans = [_clean_span(number) for number in range(4)]
    spans[1].trace_id = b" 10.20.30.40abcd"  # random id bytes can spell a loose IPv4 pattern
    spans[2].parent_span_id = b"#1234567"
    spans[2].start_time_unix_nano = int.from_bytes(b"@4111111", "little")  # fixed64, little-endian
    spans[3].trace_state = "mail=anna.meyer42@example.com"  # passed through, never redacted
    spans.append(_clean_span(4))
    spans[4].span_id = b" 1.2.3.4"
    spans[4].name = "GET /users/anna.meyer42@example.com"  # but a hit in its name is
    message = _traces(spans)
    assert _visited(message) == [[4]]
    _both_ways(message)
    logs = LogsData(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[
        LogRecord(trace_id=b" 10.20.30.40abcd", body=AnyValue(string_value="ok")),
        LogRecord(span_id=b" 1.2.3.4", body=AnyValue(string_value="from 203.0.113.7")),
    ])])])
    assert _visited(logs) == [[1]]
    _both_ways(logs)


def _tree(depth: int) -> AnyValue:
    """Maps and arrays nested `depth` deep, alternating, around a clean string."""
    value = AnyValue(string_value="leaf")
    for level in range(depth):
        value = AnyValue(array_value=ArrayValue(values=[value])) if level % 2 else AnyValue(
            kvlist_value=KeyValueList(values=[_kv(f"level{level}", value)]))
    return value


def test_nesting_beyond_max_depth_is_visited_even_without_findings() -> None:
    spans = [_clean_span(number) for number in range(3)]
    spans[1].attributes.append(_kv("app.tree", _tree(10)))
    message = _traces(spans)
    assert 1 in _visited(message)[0]
    assert _both_ways(message)[1] == {("checkout", "max_depth"): 1}


def test_log_records_nesting_beyond_max_depth_in_attributes_or_body_are_visited_and_plain_ones_not() -> None:
    # A log attribute's header (LogRecord field 6, then KeyValue.key) and a string body (field 5,
    # then AnyValue.string_value) have the bytes of a map or array value's header after them.
    plain = [_kv(f"app.field{number}", f"value {number}") for number in range(12)]
    records = [
        LogRecord(body=AnyValue(string_value="ok"), attributes=plain),
        LogRecord(body=_tree(10), attributes=plain),
        LogRecord(body=AnyValue(string_value="ok"), attributes=[*plain, _kv("app.tree", _tree(10))]),
        LogRecord(body=AnyValue(string_value="ok"), attributes=[_kv("app.tree", _tree(5))]),
    ]
    resource = Resource(attributes=[_kv("service.name", "checkout")])
    scope = ScopeLogs(log_records=records)
    logs = LogsData(resource_logs=[ResourceLogs(resource=resource, scope_logs=[scope])])
    assert _visited(logs) == [[1, 2]]
    assert _both_ways(logs)[1] == {("checkout", "max_depth"): 2}


# -- payloads that do not fit, failure ------------------------------------------------------------


def test_a_payload_that_does_not_describe_the_message_falls_back_to_the_full_path() -> None:
    message = _traces([_clean_span(1), _clean_span(2)])
    message.resource_spans[0].scope_spans[0].spans[1].attributes.append(_kv("app.mail", "a.b@example.com"))
    other = encode(_traces([_clean_span(1)]), Encoding.PROTO)
    for payload in (other, b"\x0a\xff\xff", b'{"resourceSpans": []}', b"", encode(message, Encoding.JSON)):
        redacted = TracesData()
        redacted.CopyFrom(message)
        assert _redactor().redact(redacted, payload) == {("checkout", "email"): 1}
        assert "a.b@example.com" not in str(redacted)


def test_the_selection_describes_the_records_of_traces_and_logs() -> None:
    config = RedactionConfig()
    prefilter = Prefilter(config, _redactor(config)._has_key_rule)
    message = _traces([_clean_span(number) for number in range(250)])
    message.resource_spans[1].scope_spans[0].spans[49].attributes.append(_kv("app.mail", "a.b@example.com"))
    selection = prefilter.select(encode(message, Encoding.PROTO), SPAN)
    assert selection is not None
    assert (selection.scopes_per_resource, selection.records_per_scope) == ([2, 1], [100, 100, 50])
    # the last span, its new attribute only
    assert selection.hits == [[], [], [(49, (False, [len(CLEAN_ATTRIBUTES)]))]]
    logs = LogsData(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[LogRecord()] * 3)])])
    selection = prefilter.select(encode(logs, Encoding.PROTO), LOG_RECORD)
    assert selection is not None
    assert (selection.scopes_per_resource, selection.records_per_scope) == ([1], [3])
    assert prefilter.select(b"\x0a\x05\x12\x09", SPAN) is None  # a scope longer than its resource


def test_failure_with_a_payload_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _traces([_clean_span(1)])
    redactor = _redactor()

    def broken(_payload: bytes) -> None:
        raise RuntimeError("anna.meyer42@example.com")

    monkeypatch.setattr(redactor._prefilter, "select", broken)
    with pytest.raises(RedactionError) as raised:
        redactor.redact(message, encode(message, Encoding.PROTO))
    assert "anna" not in str(raised.value)


# -- the tables the loose patterns rely on --------------------------------------------------------


def test_digit_run_starts_every_digit_led_shape_it_stands_for() -> None:
    """The prefilter looks for DIGIT_RUN in place of the digit-led shapes (but the exceptions):
    every identifier of such a shape must start with it. Checked on samples drawn from each shape."""
    generator = rstr.Rstr(random.Random(14))
    stood_for = [
        family for family in FAMILIES
        if DIGIT_LED.match(family.shape) and family.name not in DIGIT_RUN_EXCEPTIONS
    ]
    assert len(stood_for) > 20
    for family in stood_for:
        for _ in range(300):
            sample = generator.xeger(family.shape)
            assert re.match(DIGIT_RUN, sample), (family.name, sample)
    for name in DIGIT_RUN_EXCEPTIONS:  # each exception is needed
        shape = next(family.shape for family in FAMILIES if family.name == name)
        assert not all(re.match(DIGIT_RUN, generator.xeger(shape)) for _ in range(300)), name


def test_digit_blocks_are_pythons_unicode_digits() -> None:
    digits = re.findall(r"\d", "".join(map(chr, range(0x110000))))
    assert digits == [chr(first + offset) for first in DIGIT_BLOCKS for offset in range(10)]


def test_folded_letters_are_every_non_ascii_letter_matching_an_ascii_one() -> None:
    letter = re.compile(r"[a-z]", re.IGNORECASE)
    folds = {chr(code) for code in range(0x80, 0x110000)
             if code < 0xD800 or code > 0xDFFF
             if letter.fullmatch(chr(code)) or any(c.isascii() and c.isalpha() for c in chr(code).lower())}
    assert folds == set(FOLDED_LETTERS)


def test_visiting_only_some_attributes_keeps_drops_summaries_and_counts() -> None:
    config = RedactionConfig(summary_attributes=True, detectors={Detector.EMAIL: Action.DROP},
                             person_key_action=Action.TRUNCATE)
    spans = [_clean_span(number) for number in range(5)]
    spans[2].attributes.insert(1, _kv("app.contact", "a.b@example.com"))  # dropped: later indices shift
    spans[2].attributes.append(_kv("client.address", "203.0.113.7"))
    spans[2].attributes.append(_kv("app.peer", "10.1.2.3"))
    spans[3].name = "mail a.b@example.com"
    redacted, counts = _both_ways(_traces(spans), config)
    span = redacted.resource_spans[0].scope_spans[0].spans[2]  # type: ignore[union-attr]
    attributes = {kv.key: kv.value.string_value for kv in span.attributes}
    assert "app.contact" not in attributes and attributes["client.address"] == "203.0.113.0/24"
    assert attributes["redaction.redacted.keys"] == "app.contact"
    assert counts == {("checkout", "email"): 2, ("checkout", "person_key"): 1, ("checkout", "ipv4"): 1}
    generated = GeneratorConfig(seed=3, pii_share=0.2, spans_per_message=200, logs_per_message=200)
    for message in (m for m, _ in zip(iter_messages(generated), range(20), strict=False)):
        if message.signal is not Signal.METRICS and not message.is_garbage:
            _both_ways(message.message, config)
