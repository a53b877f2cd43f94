from __future__ import annotations

from dataclasses import dataclass

from telemetry_pipeline.enrichment import Enricher, EnrichmentConfig, HoldBuffer, UserDirectory
from telemetry_pipeline.enrichment.hold import NO_BACKLOG, InputProgress
from telemetry_pipeline.enrichment.tests.builders import KEY, S, all_spans, attr, traces
from telemetry_pipeline.otlp import Message, Signal
from telemetry_pipeline.redaction.pseudonym import Pseudonymizer


@dataclass
class Item:
    signal: Signal
    message: Message


def setup(**config: int) -> tuple[EnrichmentConfig, Enricher, HoldBuffer[Item]]:
    cfg = EnrichmentConfig(**config)
    return cfg, Enricher(cfg, {}, UserDirectory(), {}, Pseudonymizer(KEY)), HoldBuffer(cfg)


def child(trace: int) -> Item:
    return Item(Signal.TRACES, traces([S(trace, 2, 1), S(trace, 3, 2)]))


def declined(enricher: Enricher, item: Item, now_ms: int) -> bool:
    enricher.learn(item.signal, item.message, now_ms)
    return not enricher.enrich(item.signal, item.message, final=False)


def test_held_message_is_ready_once_its_root_is_learned() -> None:
    _, enricher, held = setup(grace_period_ms=1_000)
    waiting = child(1)
    assert declined(enricher, waiting, 0)
    held.hold(waiting, 0, enricher.missing_traces(waiting.signal, waiting.message))
    assert held.take_ready(100, enricher) == []
    assert len(held) == 1

    enricher.learn(Signal.TRACES, traces([S(1, 1, attributes={"enduser.id": "bob"})]), 200)
    assert held.take_ready(200, enricher) == [waiting]
    assert len(held) == 0
    assert enricher.enrich(Signal.TRACES, waiting.message, final=False)
    assert all(attr(span, "trace.root.service") == "frontend" for span in all_spans(waiting.message))
    assert held.counters.released_with_context == 1


def test_overdue_message_goes_out_without_context_even_when_retried_with_final_false() -> None:
    _, enricher, held = setup(grace_period_ms=1_000)
    waiting = child(1)
    assert declined(enricher, waiting, 0)
    held.hold(waiting, 0, enricher.missing_traces(waiting.signal, waiting.message))
    assert held.take_ready(999, enricher) == []
    assert held.take_ready(1_000, enricher) == [waiting]
    # The core retries held messages together with a fresh batch, with final=False.
    assert enricher.enrich(Signal.TRACES, waiting.message, final=False)
    assert enricher.stats().released_without_context == 2
    assert held.counters.released_expired == 1


def test_capacity_pushes_out_the_oldest() -> None:
    _, enricher, held = setup(grace_period_ms=60_000, max_held_messages=2)
    items = [child(n) for n in (1, 2, 3)]
    for n, item in enumerate(items):
        assert declined(enricher, item, n)
        held.hold(item, n, enricher.missing_traces(item.signal, item.message))
    assert held.take_ready(10, enricher) == [items[0]]
    assert len(held) == 2
    assert enricher.enrich(Signal.TRACES, items[0].message, final=False)
    assert held.counters.released_overflow == 1


def test_everything_empties_the_buffer_in_order() -> None:
    _, enricher, held = setup(grace_period_ms=60_000)
    items = [child(n) for n in (1, 2)]
    for item in items:
        held.hold(item, 0, enricher.missing_traces(item.signal, item.message))
    assert held.next_deadline_ms() == 60_000
    assert held.take_ready(0, enricher, everything=True) == items
    assert len(held) == 0
    assert held.next_deadline_ms() is None


def test_with_a_spans_backlog_a_message_waits_for_the_spans_event_time_not_the_wall_clock() -> None:
    _, enricher, held = setup(grace_period_ms=1_000)
    waiting = child(1)
    assert declined(enricher, waiting, 0)
    held.hold(waiting, 0, enricher.missing_traces(waiting.signal, waiting.message), event_ms=50_000)
    # Long past the wall-clock grace, but the spans read are not yet past the message's time + grace.
    for read_to, ready in ((None, []), (50_999, []), (51_000, [waiting])):
        assert held.take_ready(60_000, enricher, spans=InputProgress(True, read_to)) == ready, read_to
    assert held.counters.released_expired == 1


def test_without_a_backlog_the_wall_clock_grace_applies() -> None:
    _, enricher, held = setup(grace_period_ms=1_000)
    waiting = child(1)
    assert declined(enricher, waiting, 0)
    held.hold(waiting, 0, enricher.missing_traces(waiting.signal, waiting.message), event_ms=50_000)
    assert held.take_ready(999, enricher, spans=NO_BACKLOG) == []
    assert held.take_ready(1_000, enricher, spans=NO_BACKLOG) == [waiting]


def test_held_bytes_bound_pushes_out_the_oldest() -> None:
    _, enricher, held = setup(grace_period_ms=60_000, max_held_bytes=250)
    items = [child(n) for n in (1, 2, 3)]
    for n, item in enumerate(items):
        assert declined(enricher, item, n)
        held.hold(item, n, enricher.missing_traces(item.signal, item.message), event_ms=n, size=100)
    assert held.held_bytes == 300
    assert held.take_ready(10, enricher, spans=InputProgress(backlog=True)) == [items[0]]
    assert held.held_bytes == 200 and len(held) == 2
    assert held.counters.released_overflow == 1
