"""The trace-context table: what a trace's root span told us, kept per trace id, bounded and TTL'd.

Layout of one value in the store (JSON, so a Faust table with a changelog can hold it), keyed by the
32-hex trace id: a list, its format version first (FORMAT)::

    [2, last_seen_ms, root_service, root_route, user, tenant, span_ids, summaries]

root_service and root_route are null until the root span has been seen, user is a pseudonym only
(the changelog is a Kafka topic), tenant null when none. The span summaries (for log correlation,
bounded) are the span ids joined in one string, "<span_id_hex>,<span_id_hex>,...", and their
summaries [service, name, status_code] in the same order. A list of eight rather than a dict of six
keys, and the summaries packed, keep a trace at ~0.7 KB of memory (benchmarks/README.md, "A backlog
ten times the pre-load"). This code keeps the values it saves as tuples (the same JSON): tuples of
strings and numbers are not tracked by Python's garbage collector, which would otherwise walk two
objects per trace, 100,000 at the bound, in every full collection that every agent waits through;
values recovered from the changelog are lists, read the same. Version 1, written by older versions
and read the same, was a dict: {"t": last_seen_ms, "root_service", "root_route", "user", "tenant"
(each when known), "spans": [ids, summaries] or a dict {span_id_hex: summary}}. A value of a version
this code does not know (a newer worker's, met in a rolling deploy) counts as absent, never misread:
its trace is unseen here, and the next save of it writes this version. Versions before 2 cannot read
version 2: rolling back past it needs the trace-context changelog topic deleted first (README, "Known
limits").

The enricher works on a dict: `load` hands a value out as {"t", "root_service", "root_route", "user",
"tenant" (each when known), "spans": {span_id_hex: summary}} and `save` stores it in the current
layout.

The store is the shell's (a dict in replay and tests, a Faust Table in the worker) and is written
only by assignment, once per trace per learned message. Next to it sits an in-memory index of every
stored value in least-recently-seen order: enrichment of spans and the "is this trace known?"
checks of held messages read only the index (a TraceContext of the value's small fields), and
eviction walks it from the oldest end. It is rebuilt from the store on start, and must be rebuilt
whenever the store changes under us: the worker calls `rebuild_index` from the table's recovery
callback after every rebalance, so recovered traces are evicted like the others and those of
partitions gone elsewhere leave memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass

FORMAT = 2
# A stored value: a tuple as this code saves it, a list as recovered from the changelog's JSON, a dict
# in format 1.
Stored = tuple | list | dict
_CONTEXT_FIELDS = ("root_service", "root_route", "user", "tenant")


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
    def of(cls, value: Stored) -> TraceContext:
        """Of a stored value, in either layout (see the module doc)."""
        if isinstance(value, dict):
            return cls(value.get("t", 0), value.get("root_service"), value.get("root_route"),
                       value.get("user"), value.get("tenant"))
        return cls(value[1], value[2], value[3], value[4], value[5])


@dataclass(slots=True)
class TableCounters:
    evicted_ttl: int = 0
    evicted_size: int = 0
    span_summaries_dropped: int = 0  # spans past max_spans_per_trace: their logs get no span fields


class TraceContextTable:
    def __init__(self, store: MutableMapping[str, Stored], *, ttl_ms: int, max_traces: int,
                 max_spans_per_trace: int) -> None:
        self._store = store
        self._ttl_ms = ttl_ms
        self.max_traces = max_traces
        self.max_spans_per_trace = max_spans_per_trace
        # key -> the stored value itself (no copy): the order is what the index adds.
        self._index: OrderedDict[str, Stored] = OrderedDict()
        self.counters = TableCounters()
        self.rebuild_index()

    def rebuild_index(
        self, owned: Callable[[str], bool] | None = None,
        local: MutableMapping[str, Stored] | None = None,
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
            elif _readable(value):
                contexts.append((key, value))
        if local is not None:
            for key in moved:
                local.pop(key, None)
        contexts.sort(key=lambda item: _last_seen_ms(item[1]))
        self._index = OrderedDict(contexts)

    def __len__(self) -> int:
        # The store's size, not the index's: what memory holds, including anything the index missed.
        return len(self._store)

    def context(self, key: str) -> TraceContext | None:
        value = self._value(key)
        return None if value is None else TraceContext.of(value)

    def root_seen(self, key: str) -> bool:
        """Whether the trace's root span has been seen: the hold asks this of every trace its messages
        wait for on every tick, so without a TraceContext made."""
        value = self._value(key)
        if value is None:
            return False
        return (value.get("root_service") if isinstance(value, dict) else value[2]) is not None

    def _value(self, key: str) -> Stored | None:
        value = self._index.get(key)
        # `in` before reading: a Faust table's miss raises KeyError inside its __getitem__, and most
        # keys asked for and not indexed are traces not seen yet.
        if value is None and key in self._store:
            value = self._stored(key)
            if value is not None:
                self._index[key] = value
        return value

    def _stored(self, key: str) -> Stored | None:
        """The store's value for `key` if this code can read it (see `_readable`)."""
        value = self._store.get(key)
        return value if _readable(value) else None

    def span_summaries(self, key: str) -> dict[str, Sequence]:
        value = self._stored(key)
        if value is None:
            return {}
        return _unpacked(value.get("spans") if isinstance(value, dict) else value[6:])

    def load(self, key: str) -> dict:
        """The stored value as a dict to update, its span summaries a dict (a fresh value for a new
        trace); hand it back with `save`."""
        value = self._stored(key)
        if value is None:
            return {"spans": {}}
        if isinstance(value, dict):  # format 1
            loaded = {name: value[name] for name in ("t", *_CONTEXT_FIELDS) if name in value}
            loaded["spans"] = _unpacked(value.get("spans"))
            return loaded
        fields = zip(_CONTEXT_FIELDS, value[2:6], strict=True)
        loaded = {name: field for name, field in fields if field is not None}
        loaded["t"] = value[1]
        loaded["spans"] = _unpacked(value[6:])
        return loaded

    def save(self, key: str, value: dict, now_ms: int) -> None:
        spans = value["spans"]
        stored = (FORMAT, now_ms, value.get("root_service"), value.get("root_route"), value.get("user"),
                  value.get("tenant"), ",".join(spans), tuple(spans.values()))
        self._store[key] = stored
        self._index[key] = stored
        self._index.move_to_end(key)

    def evict(self, now_ms: int) -> None:
        """Drop traces not seen for the TTL, then the least recently seen beyond the size bound.

        The index is in order of last write, so this stops at the first live trace; with a clock
        that goes backwards (replay of unordered input) eviction is late, never early.
        """
        index, store = self._index, self._store
        cutoff = now_ms - self._ttl_ms
        while index:
            key, value = next(iter(index.items()))
            if _last_seen_ms(value) >= cutoff:
                break
            del index[key]
            store.pop(key, None)
            self.counters.evicted_ttl += 1
        while len(index) > self.max_traces:
            key, _ = index.popitem(last=False)
            store.pop(key, None)
            self.counters.evicted_size += 1


def _readable(value: Stored | None) -> bool:
    """A value of format 1 (a dict) or of this one (see the module doc); not an empty one."""
    return bool(value) and (isinstance(value, dict) or value[0] == FORMAT)


def _last_seen_ms(value: Stored) -> int:
    return value.get("t", 0) if isinstance(value, dict) else value[1]


def _unpacked(spans: dict | Sequence | None) -> dict[str, Sequence]:
    """The span summaries of a stored value as {span_id_hex: summary}: from [ids, summaries] or, in
    format 1, a dict (see the module doc)."""
    if isinstance(spans, dict):
        return spans
    if not spans or not spans[1]:  # by the summaries: a single span id may be empty (malformed input)
        return {}
    ids, summaries = spans
    return dict(zip(ids.split(","), summaries, strict=True))
