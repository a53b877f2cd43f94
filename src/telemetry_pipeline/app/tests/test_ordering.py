"""Agents get each input partition's records in offset order: what Faust hands over past a gap waits for
the seek back (app/ordering.py). Faust's consumer is stood in for by the members the order hooks and calls."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from faust.types import TP

from telemetry_pipeline.app import ordering
from telemetry_pipeline.app.ordering import InputOrder

SPANS = TP("otlp_spans", 0)
OTHER = TP("app-trace-context-changelog", 0)


class _Consumer:
    def __init__(self, committed: dict[TP, int | None]) -> None:
        self.committed = committed
        self.sought: list[dict[TP, int]] = []
        self.gaps: list[tuple[TP, int, int]] = []
        self.sought_to_start: list[TP] = []
        self._thread = SimpleNamespace(seek_wait=self._seek_wait, seek_to_beginning=self._seek_to_beginning)

    async def seek_to_committed(self) -> dict[TP, int | None]:
        return self.committed

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        self.gaps.append((tp, offset_from, offset_to))

    async def getmany(self, timeout: float):
        yield (SPANS, "record")

    async def earliest_offsets(self, *partitions: TP) -> dict[TP, int]:
        return dict.fromkeys(partitions, 40)  # the log's start, after retention

    async def _seek_wait(self, partitions: dict[TP, int]) -> None:
        self.sought.append(dict(partitions))

    async def _seek_to_beginning(self, *partitions: TP) -> None:
        self.sought_to_start.extend(partitions)

    def assignment(self) -> set[TP]:
        return {SPANS, OTHER}


def _events(tp: TP, offsets: range | list[int]) -> list[SimpleNamespace]:
    return [SimpleNamespace(message=SimpleNamespace(tp=tp, offset=offset)) for offset in offsets]


def _offsets(events: list[SimpleNamespace]) -> list[int]:
    return [event.message.offset for event in events]


def _installed(committed: dict[TP, int | None]) -> tuple[InputOrder, _Consumer]:
    order, consumer = InputOrder({"otlp_spans"}), _Consumer(committed)
    order.install(consumer)
    asyncio.run(consumer.seek_to_committed())  # as Faust does after every rebalance
    return order, consumer


async def _fetch(consumer: _Consumer) -> None:
    async for _item in consumer.getmany(1.0):
        pass


def test_records_past_a_gap_wait_for_the_seek_back_and_come_in_order() -> None:
    order, consumer = _installed({SPANS: 114})
    # As seen on the broker: 122-129 first, 114-121 dropped by Faust.
    assert asyncio.run(order.admit(_events(SPANS, range(122, 130)))) == []
    asyncio.run(_fetch(consumer))
    assert consumer.sought == [{SPANS: 114}]  # once, before the next fetch
    again = asyncio.run(order.admit(_events(SPANS, range(114, 130))))
    assert _offsets(again) == list(range(114, 130))
    asyncio.run(_fetch(consumer))
    assert consumer.sought == [{SPANS: 114}]  # filled: no further seek
    # Read again after a later seek: admitted (at-least-once), and what follows still is.
    assert _offsets(asyncio.run(order.admit(_events(SPANS, [125, 130])))) == [125, 130]


def test_faust_never_commits_a_gap_of_our_topics_but_others_keep_its_rule() -> None:
    _, consumer = _installed({SPANS: 10})
    asyncio.run(consumer._add_gap(SPANS, 10, 20))
    asyncio.run(consumer._add_gap(OTHER, 3, 5))
    assert consumer.gaps == [(OTHER, 3, 5)]


def test_a_gap_no_seek_fills_is_accepted_and_committed_past(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(ordering.time, "monotonic", lambda: clock[0])
    order, consumer = _installed({SPANS: 5})
    assert asyncio.run(order.admit(_events(SPANS, [8]))) == []  # 5-7 do not exist (say, markers)
    clock[0] += ordering.RESEEK_S
    assert asyncio.run(order.admit(_events(SPANS, [8]))) == []
    assert order.gaps_sought == 2
    clock[0] += ordering.GAP_ACCEPT_S
    assert _offsets(asyncio.run(order.admit(_events(SPANS, [8, 9])))) == [8, 9]
    assert consumer.gaps == [(SPANS, 5, 7)]


def test_a_partition_read_from_its_start_expects_the_logs_first_offset() -> None:
    order, consumer = _installed({SPANS: None, OTHER: None})
    assert consumer.sought_to_start == [SPANS]  # aiokafka left it where it was; a changelog is Faust's
    assert asyncio.run(order.admit(_events(SPANS, [42, 43]))) == []  # 40-41 dropped by Faust
    asyncio.run(_fetch(consumer))
    assert consumer.sought == [{SPANS: 40}]
    assert _offsets(asyncio.run(order.admit(_events(SPANS, [40, 41, 42])))) == [40, 41, 42]
