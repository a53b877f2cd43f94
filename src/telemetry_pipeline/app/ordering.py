"""Each input partition's records reach our agents in offset order, without gaps.

Faust can skip records of a partition and hand an agent the ones after them: a fetch whose rest it
drops when the consumer generation changes under it, or records dropped around a rebalance that its
seek back to the committed offset brings again only after later ones (seen on the broker: a partition's
offsets 122-129, then 114-129; in another run 500-623, then 688-815, and 624-687 only after a restart).
Its drain loop also marks such a gap's offsets committable (`Consumer._add_gap`, meant for transaction
markers), so a commit can pass records no agent processed. Processed out of order, the records after
the gap move their source's progress, and the SLI watermark passes the gap's data, which comes late
(57 buckets dropped in a run whose worker was killed in a backlog).

So the agents take records through `admit`: per partition it expects the offset after the last one
admitted, from the committed offset Faust seeks to after every rebalance (or the log's start). A
record beyond it is left unprocessed and unacknowledged (the commit guard keeps it from being
committed), and the partition is sought back to the expected offset just before the consumer's next
fetch, where Faust seeks after dropping records itself, so its own read-offset check lets the records
fetched again through. A record below it (read again after a seek) is admitted: processing it twice
is at-least-once, and the SLI engine skips its partials. A gap that seeks do not fill (offsets that
do not exist: transaction markers, a truncated log) is accepted after `GAP_ACCEPT_S`, logged, and
committed past.

A partition with no committed offset is sought to its start with the others. aiokafka's
`seek_to_committed` skips partitions with no committed offset (or 0), so there the records Faust dropped
would never be read: the partition looks stuck (seen: a worker joined while the second partition of a
new deployment had no commit yet; its 16 records waited until the next rebalance). The start is what
`auto_offset_reset=earliest` gives a new consumer; it can repeat records this worker processed but has
not committed yet (at-least-once). Changelog partitions are left alone: Faust's recovery places them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass

from faust.types import TP, EventT

log = logging.getLogger(__name__)

RESEEK_S = 5.0  # a gap still open this long after its seek is sought again
GAP_ACCEPT_S = 30.0


@dataclass(slots=True)
class _Gap:
    offset: int  # the first offset missing
    since: float  # monotonic s
    sought: float


class InputOrder:
    def __init__(self, topics: Collection[str]) -> None:
        self._topics = set(topics)
        self._expected: dict[TP, int] = {}  # per partition: the next offset to admit (none: the first)
        self._gaps: dict[TP, _Gap] = {}
        self._seeks: dict[TP, int] = {}  # to do before the next fetch
        self._commit_gap = None  # Faust's `_add_gap`, for gaps accepted
        self.gaps_sought = 0

    def install(self, consumer) -> None:
        """Hook the Faust consumer: seek partitions with no committed offset to their start, expect the
        offsets it seeks to, keep gaps of our topics uncommitted, and seek back before each fetch. Call
        before the consumer starts."""
        seek_to_committed, add_gap, getmany = consumer.seek_to_committed, consumer._add_gap, consumer.getmany
        self._commit_gap = add_gap

        async def seek_to_committed_and_expect() -> Mapping[TP, int]:
            committed = await seek_to_committed()
            ours = {tp: offset for tp, offset in committed.items() if tp.topic in self._topics}
            # None (or 0) is read from its start, expecting the log's first offset there, else a record
            # Faust drops at the start would go unnoticed (seen: a new deployment's first two
            # sli-partials records never applied).
            uncommitted = [tp for tp, offset in ours.items() if not offset]
            starts = {}
            if uncommitted:
                await consumer._thread.seek_to_beginning(*uncommitted)  # the aiokafka consumer's thread
                starts = await consumer.earliest_offsets(*uncommitted)
            for tp, offset in ours.items():
                self._reset(tp, offset or starts.get(tp))
            return committed

        async def add_gap_unless_ordered(tp: TP, offset_from: int, offset_to: int) -> None:
            if tp.topic not in self._topics:
                await add_gap(tp, offset_from, offset_to)

        async def getmany_after_seeks(timeout: float) -> AsyncIterator[tuple[TP, object]]:
            seeks, self._seeks = self._seeks, {}
            due = {tp: offset for tp, offset in seeks.items() if self._expected.get(tp) == offset}
            due = {tp: offset for tp, offset in due.items() if tp in consumer.assignment()}
            if due:
                # In the consumer's thread, and setting Faust's read offsets to these (`seek_wait`).
                await consumer._thread.seek_wait(due)
            async for item in getmany(timeout):
                yield item

        consumer.seek_to_committed = seek_to_committed_and_expect
        consumer._add_gap = add_gap_unless_ordered
        consumer.getmany = getmany_after_seeks

    def _reset(self, tp: TP, offset: int | None) -> None:
        if offset is None:
            self._expected.pop(tp, None)
        else:
            self._expected[tp] = offset
        self._gaps.pop(tp, None)
        self._seeks.pop(tp, None)

    async def admit(self, events: list[EventT]) -> list[EventT]:
        """The events an agent may process now, in their order: those of our topics' partitions that
        follow on from what was admitted (or come again); the others wait for the seek back."""
        admitted = []
        now = time.monotonic()
        for event in events:
            message = event.message
            tp, offset = message.tp, message.offset
            expected = self._expected.get(tp) if tp.topic in self._topics else None
            if expected is not None and offset > expected:
                if not await self._past_gap(tp, expected, offset, now):
                    continue
            elif expected is not None and offset < expected:
                admitted.append(event)  # read again after a seek
                continue
            self._expected[tp] = offset + 1
            self._gaps.pop(tp, None)
            admitted.append(event)
        return admitted

    async def _past_gap(self, tp: TP, expected: int, offset: int, now: float) -> bool:
        """Whether to admit `offset` past the missing `expected`: only once the gap is too old to fill."""
        gap = self._gaps.get(tp)
        if gap is None or gap.offset != expected:
            gap = self._gaps[tp] = _Gap(expected, now, now - RESEEK_S)
            log.info("%s[%d]: offsets from %d skipped by the consumer; reading them again", *tp, expected)
        if now - gap.since < GAP_ACCEPT_S:
            if now - gap.sought >= RESEEK_S:
                self._seeks[tp], gap.sought = expected, now
                self.gaps_sought += 1
            return False
        log.warning(
            "%s[%d]: offsets %d to %d never came after %.0fs of seeks; continuing past them",
            *tp,
            expected,
            offset - 1,
            now - gap.since,
        )
        await self._commit_gap(tp, expected, offset - 1)  # type: ignore[misc]  # both ends in the gap
        return True
