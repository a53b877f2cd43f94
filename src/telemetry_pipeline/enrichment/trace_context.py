"""The trace-context table: what a trace's root span told us, kept per trace id, bounded and TTL'd.

Layout of one value in the store (JSON, so a Faust table with a changelog can hold it), keyed by the
32-hex trace id::

    {"t": last_seen_ms,
     "root_service": ..., "root_route": ...,      # present once the root span has been seen
     "user": "hmac:...", "tenant": ...,           # pseudonym only: the changelog is a Kafka topic
     "spans": ["<span_id_hex>,<span_id_hex>,...", [[service, name, status_code], ...]]}

The span summaries (for log correlation, bounded) are the span ids joined in one string and their
summaries in the same order: two objects per trace rather than a dict and a string per span, ~0.5 KB
less of a trace's ~1.7 KB (benchmarks/README.md, "Memory flat across backlog sizes"). `load` hands
them out as a dict {span_id_hex: summary} and `save` packs them again; a dict in the store (written
by an older version, or a value loaded and not saved) reads the same.

The store is the shell's (a dict in replay and tests, a Faust Table in the worker) and is written
only by assignment, once per trace per learned message. Next to it sits an in-memory index of the
small part of every value (no span summaries) in least-recently-seen order: enrichment of spans and
the "is this trace known?" checks of held messages read only the index, and eviction walks it from
the oldest end. It is rebuilt from the store on start, and must be rebuilt whenever the store
changes under us: the worker calls `rebuild_index` from the table's recovery callback after every
rebalance, so recovered traces are evicted like the others and those of partitions gone elsewhere
leave memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass


@dataclass(slots=True)
class TraceContext:
    last_seen_ms: int
    root_service: str | None = None  # None until the trace's root span has been seen
    root_route: str | None = None
    user: str | None = None  # pseudonym
    tenant: str | None = None

    @property
    def root_seen(self) -> bool:
        return self.root_service is not None

    @classmethod
    def of(cls, value: dict) -> TraceContext:
        return cls(value.get("t", 0), value.get("root_service"), value.get("root_route"),
                   value.get("user"), value.get("tenant"))


@dataclass(slots=True)
class TableCounters:
    evicted_ttl: int = 0
    evicted_size: int = 0
    span_summaries_dropped: int = 0  # spans past max_spans_per_trace: their logs get no span fields


class TraceContextTable:
    def __init__(self, store: MutableMapping[str, dict], *, ttl_ms: int, max_traces: int,
                 max_spans_per_trace: int) -> None:
        self._store = store
        self._ttl_ms = ttl_ms
        self.max_traces = max_traces
        self.max_spans_per_trace = max_spans_per_trace
        self._index: OrderedDict[str, TraceContext] = OrderedDict()
        self.counters = TableCounters()
        self.rebuild_index()

    def rebuild_index(
        self, owned: Callable[[str], bool] | None = None, local: MutableMapping[str, dict] | None = None
    ) -> None:
        """Index every trace in the store, in order of last write. With `owned` (after a rebalance),
        traces it rejects are removed from `local` instead: the store's memory without its changelog
        (a Faust table's `data`), since the worker that owns their partition now has them there;
        deleting them from the store itself would write tombstones over them."""
        contexts = []
        moved = []
        for key, value in self._store.items():
            if owned is not None and not owned(key):
                moved.append(key)
            elif value:
                contexts.append((key, TraceContext.of(value)))
        if local is not None:
            for key in moved:
                local.pop(key, None)
        contexts.sort(key=lambda item: item[1].last_seen_ms)
        self._index = OrderedDict(contexts)

    def __len__(self) -> int:
        # The store's size, not the index's: what memory holds, including anything the index missed.
        return len(self._store)

    def context(self, key: str) -> TraceContext | None:
        context = self._index.get(key)
        if context is None:
            value = self._store.get(key)
            if value:
                context = self._index[key] = TraceContext.of(value)
        return context

    def span_summaries(self, key: str) -> dict[str, Sequence]:
        value = self._store.get(key)
        return _unpacked(value.get("spans")) if value else {}

    def load(self, key: str) -> dict:
        """The stored value to update, its span summaries as a dict (a fresh value for a new trace);
        hand it back with `save`."""
        value = self._store.get(key)
        if not value:
            return {"spans": {}}
        value["spans"] = _unpacked(value.get("spans"))
        return value

    def save(self, key: str, value: dict, now_ms: int) -> None:
        value["t"] = now_ms
        spans = value.get("spans")
        if isinstance(spans, dict):
            value["spans"] = [",".join(spans), list(spans.values())]
        self._store[key] = value
        self._index[key] = TraceContext.of(value)
        self._index.move_to_end(key)

    def evict(self, now_ms: int) -> None:
        """Drop traces not seen for the TTL, then the least recently seen beyond the size bound.

        The index is in order of last write, so this stops at the first live trace; with a clock
        that goes backwards (replay of unordered input) eviction is late, never early.
        """
        index, store = self._index, self._store
        cutoff = now_ms - self._ttl_ms
        while index:
            key, context = next(iter(index.items()))
            if context.last_seen_ms >= cutoff:
                break
            del index[key]
            store.pop(key, None)
            self.counters.evicted_ttl += 1
        while len(index) > self.max_traces:
            key, _ = index.popitem(last=False)
            store.pop(key, None)
            self.counters.evicted_size += 1


def _unpacked(spans: dict | list | None) -> dict[str, Sequence]:
    """The span summaries of a stored value as {span_id_hex: summary} (see the module doc)."""
    if isinstance(spans, dict):
        return spans
    if not spans or not spans[1]:  # by the summaries: a single span id may be empty (malformed input)
        return {}
    ids, summaries = spans
    return dict(zip(ids.split(","), summaries, strict=True))
