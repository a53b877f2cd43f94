"""The commit guard against Faust's own commit-offset computation (`Consumer._new_offset`)."""

from __future__ import annotations

from collections import defaultdict

import pytest
from faust.transport.consumer import Consumer
from faust.types import TP
from intervaltree import IntervalTree

from telemetry_pipeline.app.commits import CommitGuard

PARTITION = TP("otlp_spans", 0)


class _FaustOffsets:
    """The state `Consumer._new_offset` reads, with Faust's own method bound to it."""

    def __init__(self, committed: int | None) -> None:
        self._committed_offset = defaultdict(lambda: None, {PARTITION: committed})
        self._acked: dict[TP, list[int]] = defaultdict(list)
        self._acked_index: dict[TP, set[int]] = defaultdict(set)
        self._gap: dict[TP, IntervalTree] = defaultdict(IntervalTree)
        self._new_offset = Consumer._new_offset.__get__(self)

    def ack(self, *offsets: int) -> None:
        # What the Faust stream iterator does when it acknowledges behind the agent's back.
        self._acked[PARTITION].extend(offsets)
        self._acked_index[PARTITION].update(offsets)


def _held(guard: CommitGuard, *offsets: int) -> None:
    for offset in offsets:
        guard._held[PARTITION].add(offset)


@pytest.mark.parametrize("committed", [None, 0, 10])
def test_unguarded_faust_commits_records_acknowledged_before_processing(committed: int | None) -> None:
    faust = _FaustOffsets(committed)
    start = committed or 0
    faust.ack(*range(start, start + 20))  # acked as they entered the buffer (app/commits.py)
    assert faust._new_offset(PARTITION) == start + 20


@pytest.mark.parametrize("committed", [None, 0, 10])
def test_commit_stops_at_the_lowest_record_the_agents_still_hold(committed: int | None) -> None:
    faust, guard = _FaustOffsets(committed), CommitGuard()
    guard.install(faust)
    start = committed or 0
    faust.ack(*range(start, start + 20))
    _held(guard, start + 5, start + 6)  # a crashed batch, never released
    assert faust._new_offset(PARTITION) == (start + 5 if start + 5 != committed else None)
    # Still held: nothing further, however often Faust asks.
    faust._committed_offset[PARTITION] = start + 5
    assert faust._new_offset(PARTITION) is None
    # Released after delivery: the commit moves to the end of what was acknowledged.
    guard._held[PARTITION].clear()
    assert faust._new_offset(PARTITION) == start + 20


def test_held_records_below_the_committed_offset_do_not_stall_commits() -> None:
    faust, guard = _FaustOffsets(committed=50), CommitGuard()
    guard.install(faust)
    _held(guard, 3)  # finished by another worker while this one did not own the partition
    faust.ack(*range(50, 60))
    assert faust._new_offset(PARTITION) == 60


def test_a_held_record_before_the_acknowledged_run_blocks_it_whole() -> None:
    faust, guard = _FaustOffsets(committed=None), CommitGuard()
    guard.install(faust)
    _held(guard, 0)
    faust.ack(*range(1, 10))  # Faust alone would commit 10 on a partition never committed
    assert faust._new_offset(PARTITION) is None
    guard._held[PARTITION].clear()
    faust.ack(0)
    assert faust._new_offset(PARTITION) == 10
