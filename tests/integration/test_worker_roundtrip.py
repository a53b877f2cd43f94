"""The worker on the real broker: SDK-encoded telemetry in, every item out on .clean, garbage to the DLQ."""

from __future__ import annotations

from pathlib import Path

import pytest

from telemetry_pipeline.otlp import Signal, decode
from telemetry_pipeline.otlp.tests.sdk_payloads import sdk_logs, sdk_metrics, sdk_spans
from tests.integration.harness import (
    PROBE_KEY,
    await_worker_ready,
    consume_until,
    deploy,
    produce,
    read_all,
    running_worker,
)

pytestmark = pytest.mark.kafka


def _span_ids(payload: bytes) -> set[bytes]:
    traces = decode(Signal.TRACES, payload)
    return {s.span_id for rs in traces.resource_spans for ss in rs.scope_spans for s in ss.spans}


def _log_bodies(payload: bytes) -> list[str]:
    logs = decode(Signal.LOGS, payload)
    return [str(r.body) for rl in logs.resource_logs for sl in rl.scope_logs for r in sl.log_records]


def _data_points(payload: bytes) -> int:
    metrics = decode(Signal.METRICS, payload)
    total = 0
    for rm in metrics.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                total += len(getattr(metric, metric.WhichOneof("data")).data_points)
    return total


def test_sdk_telemetry_reaches_clean_topics_and_garbage_the_dlq(kafka_bootstrap: str, tmp_path: Path) -> None:
    d = deploy(kafka_bootstrap, tmp_path)
    spans = [sdk_spans() for _ in range(3)]
    logs, metrics = sdk_logs(), sdk_metrics()
    span_keys = [
        decode(Signal.TRACES, p).resource_spans[0].scope_spans[0].spans[0].trace_id.hex().encode()
        for p in spans
    ]
    clean_topics = [d.topic("otlp_spans.clean"), d.topic("otlp_logs.clean"), d.topic("otlp_metrics.clean")]
    # Garbage between good records, on the same partition (same key): what follows must still flow.
    garbage = (span_keys[0], b"\x00\xffnot otlp")
    foreign_partials = (b"checkout", b'[["checkout", "soon", [], "otlp_spans[0]", 1]]')
    with running_worker(d):
        await_worker_ready(d)
        produce(kafka_bootstrap, d.topic("otlp_spans"), [(span_keys[0], spans[0]), garbage])
        produce(kafka_bootstrap, d.topic("otlp_spans"), [(span_keys[1], spans[1]), (span_keys[2], spans[2])])
        produce(kafka_bootstrap, d.topic("otlp_logs"), [(None, logs)])
        produce(kafka_bootstrap, d.topic("otlp_metrics"), [(None, metrics)])
        # Not what the ingest side writes to the internal topic: to the DLQ too, not into the SLIs.
        produce(kafka_bootstrap, d.topic("sli-partials"), [foreign_partials])
        out = consume_until(
            kafka_bootstrap,
            [*clean_topics, d.topic("telemetry.dlq")],
            lambda msgs: len([m for m in msgs if m.key() != PROBE_KEY]) >= 7,
        )
    out = [m for m in out if m.key() != PROBE_KEY]

    by_topic: dict[str, list] = {}
    for message in out:
        by_topic.setdefault(message.topic(), []).append(message)
    clean_spans = by_topic.get(d.topic("otlp_spans.clean"), [])
    assert sorted(m.key() for m in clean_spans) == sorted(span_keys)
    assert set().union(*(_span_ids(m.value()) for m in clean_spans)) == set().union(*map(_span_ids, spans))
    [clean_logs] = by_topic[d.topic("otlp_logs.clean")]
    assert clean_logs.key() is None
    assert len(_log_bodies(clean_logs.value())) == len(_log_bodies(logs))
    [clean_metrics] = by_topic[d.topic("otlp_metrics.clean")]
    assert _data_points(clean_metrics.value()) == _data_points(metrics) > 0

    dead, foreign = sorted(by_topic[d.topic("telemetry.dlq")], key=lambda m: m.key() == foreign_partials[0])
    assert (foreign.key(), foreign.value()) == foreign_partials
    # an unversioned (version 1) record, as an older worker wrote them: refused with the reason
    reason = b"sli: unversioned (version 1) partials record; this worker reads 3"
    assert dict(foreign.headers())["error"] == reason
    headers = dict(dead.headers())
    assert (dead.key(), dead.value()) == garbage
    assert headers["error"].startswith(b"decode: not a protobuf TracesData")
    assert headers["source.topic"] == d.topic("otlp_spans").encode()
    [source] = [
        m
        for m in read_all(kafka_bootstrap, [d.topic("otlp_spans")])
        if m.partition() == int(headers["source.partition"]) and m.offset() == int(headers["source.offset"])
    ]
    assert (source.key(), source.value()) == garbage
