"""No committed offset passes an input record the agents have not finished.

Faust acknowledges records behind the agents' backs. `Stream.noack_take` turns the stream's acks off
while it runs and restores them in its `finally`; when an agent crashes, the supervisor restarts it on
the same stream, the new `noack_take` reads "off" as the value to restore, and the old generator's
`finally` (run later, when it is collected) turns acks back on for good: from then on every record is
acknowledged as it enters the batch buffer, before it is processed, and a second crash or a kill
loses it. Records fetched in an older consumer generation are acknowledged unprocessed as well. The
commit offset comes from those acknowledgements (`Consumer._new_offset`, fed by both the pure-Python
and the Cython stream iterator), so the guard sits there: every record is held when it reaches an
agent's stream (a processor, which runs before any of Faust's acks) and released only by our code
after its outputs are delivered, and the offset Faust would commit is capped at the lowest record
still held.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from faust.types import TP, EventT, StreamT

log = logging.getLogger(__name__)


class CommitGuard:
    def __init__(self) -> None:
        self._held: dict[TP, set[int]] = defaultdict(set)

    def watch(self, stream: StreamT) -> None:
        """Hold every record as it reaches `stream`: call before the agent iterates it."""

        def hold(value: object) -> object:
            event = stream.current_event
            if event is not None:
                message = event.message
                self._held[message.tp].add(message.offset)
            return value

        stream.add_processor(hold)

    async def release(self, stream: StreamT, event: EventT) -> None:
        """The record's outputs are delivered: it may be committed."""
        message = event.message
        self._held[message.tp].discard(message.offset)
        await stream.ack(event)

    def lowest_held(self, tp: TP, committed: int | None) -> int | None:
        held = self._held.get(tp)
        if not held:
            return None
        if committed is not None:
            # Records below the committed offset were finished elsewhere (another worker owned the
            # partition meanwhile); they will not be released here.
            held.difference_update([offset for offset in held if offset < committed])
        return min(held, default=None)

    def install(self, consumer) -> None:
        """Cap the consumer's commit offsets at the lowest held record of each partition."""
        new_offset = consumer._new_offset

        def guarded_new_offset(tp: TP) -> int | None:
            committed = consumer._committed_offset[tp]
            acked, gap = consumer._acked[tp], consumer._gap[tp]
            first = min([*acked, *(interval.begin for interval in gap)], default=None)
            offset = new_offset(tp)
            lowest = self.lowest_held(tp, committed)
            if offset is None or lowest is None or first is None or offset <= lowest:
                return offset
            # Faust took [first, offset) off its acked list; what lies at or past the held record must
            # stay there for a later commit.
            waiting = range(max(lowest, first), offset)
            acked.extend(waiting)
            acked.sort()
            consumer._acked_index[tp].update(waiting)
            log.debug("commit of %s capped at %d (held) instead of %d", tp, lowest, offset)
            if lowest < first or (committed is not None and lowest <= committed):
                return None
            return lowest

        consumer._new_offset = guarded_new_offset
