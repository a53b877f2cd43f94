"""Messages waiting for their trace's context: a bounded buffer with a deadline per message.

Shared by both shells through the core: `hold` what `Enricher.enrich` declined, `take_ready` after
each learned batch and on a timer. The clock is the caller's `now_ms`.
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
    deadline_ms: int
    missing: list[str] | None = None  # trace ids still unknown, once computed


@dataclass
class HoldCounters:
    held: int = 0  # messages put on hold (a retried message counts once per hold)
    released_with_context: int = 0
    released_expired: int = 0  # grace period over
    released_overflow: int = 0  # pushed out early by max_held_messages


class HoldBuffer(Generic[Item]):
    def __init__(self, config: EnrichmentConfig) -> None:
        self._grace_ms = config.grace_period_ms
        self._capacity = config.max_held_messages
        self._held: list[_Held[Item]] = []
        self.counters = HoldCounters()

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, item: Item, now_ms: int) -> None:
        self._held.append(_Held(item, now_ms + self._grace_ms))
        self.counters.held += 1

    def next_deadline_ms(self) -> int | None:
        return min((held.deadline_ms for held in self._held), default=None)

    def take_ready(self, now_ms: int, enricher: Enricher, *, everything: bool = False) -> list[Item]:
        """Remove and return, oldest first: messages whose traces are all known now, those whose
        grace period is over, the oldest beyond `max_held_messages`, or all of them with
        `everything` (shutdown). The enricher is told that the overdue ones are due, so its next
        `enrich` sends them out without the missing context even when not called with `final`."""
        if everything:
            ready, self._held = self._held, []
            self.counters.released_expired += len(ready)
            enricher.set_due([held.item.message for held in ready])
            return [held.item for held in ready]
        overflow = len(self._held) - self._capacity
        ready: list[Item] = []
        due: list[Message] = []
        waiting: list[_Held[Item]] = []
        for position, held in enumerate(self._held):
            if position < overflow:
                self.counters.released_overflow += 1
                due.append(held.item.message)
            elif self._context_complete(held, enricher):
                self.counters.released_with_context += 1
            elif held.deadline_ms <= now_ms:
                self.counters.released_expired += 1
                due.append(held.item.message)
            else:
                waiting.append(held)
                continue
            ready.append(held.item)
        self._held = waiting
        enricher.set_due(due)
        return ready

    @staticmethod
    def _context_complete(held: _Held[Item], enricher: Enricher) -> bool:
        if held.missing is None:
            held.missing = enricher.missing_traces(held.item.signal, held.item.message)
        held.missing = [key for key in held.missing if not enricher.knows_trace(key)]
        return not held.missing
