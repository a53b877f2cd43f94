"""Input partitions with no committed offset are read again from their start after every rebalance.

Faust discards records it has fetched in several places around a rebalance: records that arrive while
the flow is stopped ("getmany called while flow not active"), the rest of a fetch when the flow stops
or the generation changes under it. aiokafka's position has moved past them; Faust's answer is to
seek every partition back to its committed offset (`Consumer.perform_seek`, also run when recovery
completes). aiokafka's `seek_to_committed` skips partitions with no committed offset (or 0), so on
those the discarded records are never read: the partition looks stuck (seen: a worker joined while
the second partition of a new deployment had no commit yet; its 16 records waited until the next
rebalance), and once a later record there is processed and committed, they are lost. Seeking such a
partition to its start is what `auto_offset_reset=earliest` would do for a new consumer; it can
repeat records this worker processed but has not committed yet (at-least-once).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from faust.transport.consumer import ThreadDelegateConsumer
from faust.types import TP


def rewind_uncommitted(consumer: ThreadDelegateConsumer, topics: Collection[str]) -> None:
    """Make the Faust consumer's seek to committed offsets also seek partitions of `topics` that have
    no committed offset to their start. Changelog partitions are left alone: Faust's recovery places
    them itself."""
    seek_to_committed = consumer.seek_to_committed

    async def seek_to_committed_or_start() -> Mapping[TP, int]:
        committed = await seek_to_committed()
        uncommitted = [tp for tp, offset in committed.items() if not offset and tp.topic in topics]
        if uncommitted:
            await consumer._thread.seek_to_beginning(*uncommitted)  # the aiokafka consumer's thread
        return committed

    consumer.seek_to_committed = seek_to_committed_or_start  # type: ignore[method-assign]
