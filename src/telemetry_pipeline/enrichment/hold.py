"""Messages waiting for their trace's context: a buffer bounded in messages and bytes.

Shared by both shells through the core: `hold` what `Enricher.enrich` declined, `take_ready` after
each learned batch and on a timer. How long a message waits is decided by the spans' progress when
the spans input has a backlog: until the spans read have passed the message's own event time by the
grace period (its root is not in what is still to read), so a backlog in which logs are read ahead of
spans keeps every log's context. With no spans backlog (live traffic, or no spans input at all), a
wall-clock grace on the caller's `now_ms` decides. The bounds release the oldest early either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from telemetry_pipeline.enrichment.config import EnrichmentConfig
from telemetry_pipeline.enrichment.enricher import Enricher
from telemetry_pipeline.otlp import Message, Signal


class HeldItem(Protocol):
    signal: Signal
    message: Message


Item = TypeVar("Item", bound=HeldItem)


@dataclass(slots=True)
class _Held(Generic[Item]):
    item: Item
    deadline_ms: int  # wall clock
    event_ms: int | None  # the message's newest event time, when known
    size: int  # bytes, for `max_held_bytes`
    missing: list[str]  # trace ids whose root is still unknown


@dataclass(frozen=True, slots=True)
class InputProgress:
    """Where an input (the partitions of one signal) is read to. `backlog`: some partition has records
    still to read; `read_to_ms`: then, the newest event time read from the slowest partition (None:
    nothing read yet from one with a backlog). The hold waits on the spans'."""

    backlog: bool = False
    read_to_ms: int | None = None


NO_BACKLOG = InputProgress()


@dataclass
class HoldCounters:
    held: int = 0  # messages put on hold (a retried message counts once per hold)
    released_with_context: int = 0
    released_expired: int = 0  # grace period over (on the wall clock, or past the spans' event time)
    released_overflow: int = 0  # pushed out early by max_held_messages or max_held_bytes


class HoldBuffer(Generic[Item]):
    def __init__(self, config: EnrichmentConfig) -> None:
        self._grace_ms = config.grace_period_ms
        self._capacity = config.max_held_messages
        self._capacity_bytes = config.max_held_bytes
        self._held: list[_Held[Item]] = []
        self.held_bytes = 0
        self.counters = HoldCounters()

    def __len__(self) -> int:
        return len(self._held)

    def hold(
        self, item: Item, now_ms: int, missing: list[str], *, event_ms: int | None = None, size: int = 0
    ) -> None:
        """`missing`: the trace ids the item waits for (`Enricher.missing_traces`); the item's message
        is not read again until it is ready, so the caller may drop it meanwhile."""
        self._held.append(_Held(item, now_ms + self._grace_ms, event_ms, size, missing))
        self.held_bytes += size
        self.counters.held += 1

    def next_deadline_ms(self) -> int | None:
        return min((held.deadline_ms for held in self._held), default=None)

    def take_ready(
        self,
        now_ms: int,
        enricher: Enricher,
        *,
        spans: InputProgress = NO_BACKLOG,
        everything: bool = False,
    ) -> list[Item]:
        """Remove and return, oldest first: messages whose traces are all known now, those whose
        grace period is over (see the module's note; `spans`: the spans input's progress), the oldest
        beyond `max_held_messages` or `max_held_bytes`, or all of them with `everything` (shutdown).
        The enricher is told that the overdue ones are due, so its next `enrich` sends them out
        without the missing context even when not called with `final`."""
        if everything:
            ready, self._held = self._held, []
            self.held_bytes = 0
            self.counters.released_expired += len(ready)
            enricher.set_due([held.item.message for held in ready])
            return [held.item for held in ready]
        overflow = len(self._held) - self._capacity
        excess_bytes = self.held_bytes - self._capacity_bytes
        ready: list[Item] = []
        due: list[Message] = []
        waiting: list[_Held[Item]] = []
        for position, held in enumerate(self._held):
            if position < overflow or excess_bytes > 0:
                self.counters.released_overflow += 1
                due.append(held.item.message)
            elif self._context_complete(held, enricher):
                self.counters.released_with_context += 1
            elif self._overdue(held, now_ms, spans):
                self.counters.released_expired += 1
                due.append(held.item.message)
            else:
                waiting.append(held)
                continue
            excess_bytes -= held.size
            self.held_bytes -= held.size
            ready.append(held.item)
        self._held = waiting
        enricher.set_due(due)
        return ready

    def _overdue(self, held: _Held[Item], now_ms: int, spans: InputProgress) -> bool:
        # Never before the wall-clock grace: a partition's newest span time is no promise that every
        # older span of it was read (one message holds spans of many moments). With a backlog, also
        # not before the spans' event-time progress has passed the message.
        if held.deadline_ms > now_ms:
            return False
        if not spans.backlog or held.event_ms is None:
            return True
        return spans.read_to_ms is not None and held.event_ms + self._grace_ms <= spans.read_to_ms

    @staticmethod
    def _context_complete(held: _Held[Item], enricher: Enricher) -> bool:
        held.missing = [key for key in held.missing if not enricher.knows_trace(key)]
        return not held.missing
