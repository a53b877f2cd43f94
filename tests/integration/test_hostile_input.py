"""Hostile input through the real worker on the real broker: a representative set of issue 12's list
on one partition, each followed by a good record. Every hostile record reaches the DLQ with a reason
(or .clean, redacted), every good one .clean, and no value from a record is in the worker's log or
a DLQ header. The whole list is covered against the core in tests/test_hostile_input.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import Producer

from telemetry_pipeline.enrichment.tests.builders import S, traces
from telemetry_pipeline.otlp import Encoding, Signal, decode, encode
from telemetry_pipeline.otlp.tests.sdk_payloads import sdk_logs
from tests.integration.harness import PROBE_KEY, await_worker_ready, consume_until, deploy, running_worker
from tests.test_hostile_input import MARK, _nested_proto

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

EMAIL = f"{MARK}@example.com"


def _spans(n: int, **span: object) -> bytes:
    return encode(traces([S(n, 1, **span)]), Encoding.PROTO)  # type: ignore[arg-type]


def _hostile() -> dict[bytes, tuple[str, bytes]]:
    """Key -> (topic, value)."""
    good = _spans(1, attributes={"note": EMAIL})
    spans = [S(2, n + 1, attributes={"blob": "x" * 1000, "note": EMAIL}) for n in range(10_000)]
    huge = encode(traces(spans), Encoding.PROTO)
    assert len(huge) > 10_000_000
    return {
        b"truncated": ("otlp_spans", good[:-5]),
        b"another-signal": ("otlp_spans", sdk_logs()),
        b"invalid-json": ("otlp_spans", b'{"resourceSpans": [{"' + MARK.encode()),
        b"invalid-utf8": ("otlp_spans", good.replace(MARK.encode(), b"\xff" * len(MARK))),
        b"10-mb": ("otlp_spans", huge),
        b"nested-10000": ("otlp_logs", _nested_proto(10_000, "kvlist")),
        b"long-names": ("otlp_spans", _spans(3, service="s" * 10_000, name=f"{EMAIL} " + "n" * 10_000,
                                             attributes={"note": EMAIL})),
        b"zero-time": ("otlp_spans", _spans(4, attributes={"note": EMAIL})),
    }


def test_hostile_records_go_to_the_dlq_or_out_redacted_and_the_partition_goes_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    d = deploy(kafka_bootstrap, tmp_path, {"worker": {"batch_within_s": 0.01}}, partitions=1)
    hostile = _hostile()
    # Compressed, as a Collector's exporter may send it: 10 MB of OTLP fits the broker's 1 MB limit.
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "compression.type": "lz4",
                         "message.max.bytes": 16_000_000, "linger.ms": 5})
    with running_worker(d):
        await_worker_ready(d)
        for key, (topic, value) in hostile.items():
            producer.produce(d.topic(topic), value, key)
            good = _spans(100 + len(key)) if topic == "otlp_spans" else sdk_logs()
            producer.produce(d.topic(topic), good, b"good-after-" + key)
        assert producer.flush(60) == 0
        expected = len(hostile) * 2
        out = consume_until(
            kafka_bootstrap,
            [d.topic("otlp_spans.clean"), d.topic("otlp_logs.clean"), d.topic("telemetry.dlq")],
            lambda msgs: len({m.key() for m in msgs if m.key() != PROBE_KEY}) >= expected,
            timeout_s=150,
        )
    by_key = {m.key(): m for m in out if m.key() != PROBE_KEY}
    for key in hostile:
        after = by_key[b"good-after-" + key]
        assert after.topic().endswith(".clean"), f"the record after {key!r} did not go out"
    dlq = {key for key, m in by_key.items() if m.topic() == d.topic("telemetry.dlq")}
    assert dlq == {
        b"truncated", b"another-signal", b"invalid-json", b"invalid-utf8", b"10-mb", b"nested-10000"
    }
    for key in dlq:
        headers = dict(by_key[key].headers() or [])
        assert headers.get("error"), f"{key!r} reached the DLQ without a reason"
        assert MARK.encode() not in headers["error"]
    assert int(dict(by_key[b"10-mb"].headers())["value.omitted.bytes"]) > 10_000_000  # a reference
    assert by_key[b"10-mb"].value() in (b"", None)
    for key in (b"long-names", b"zero-time"):
        value = by_key[key].value()
        decode(Signal.TRACES, value)
        assert MARK.encode() not in value, f"{key!r} left the worker unredacted"
    assert MARK not in (tmp_path / "worker.log").read_text(errors="replace")
