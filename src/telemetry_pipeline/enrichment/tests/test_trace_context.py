"""The trace-context index after Faust's table recovery (a rebalance while the worker runs)."""

from __future__ import annotations

import gc
import json
from collections import UserDict

import pytest

from telemetry_pipeline.app.worker import key_partition
from telemetry_pipeline.enrichment.trace_context import FORMAT, TraceContext, TraceContextTable

TTL_MS = 1_000


class ChangelogTable(UserDict):
    """A Faust table in miniature: writes and deletes through it go to the changelog; `data` is its
    memory, which recovery fills directly."""

    def __init__(self) -> None:
        super().__init__()
        self.tombstones: list[str] = []

    def __delitem__(self, key: str) -> None:
        self.tombstones.append(key)
        super().__delitem__(key)


def _table(store: ChangelogTable) -> TraceContextTable:
    return TraceContextTable(store, ttl_ms=TTL_MS, max_traces=100, max_spans_per_trace=8)


def test_traces_recovered_while_running_are_indexed_and_evicted() -> None:
    store = ChangelogTable()
    table = _table(store)
    table.save("a" * 32, {"spans": {}}, now_ms=10)
    # A rebalance gives this worker a partition: recovery writes that partition's traces into memory.
    recovered = {f"{n:032x}": {"t": 20, "spans": {}} for n in range(5)}
    store.data.update(recovered)
    table.evict(now_ms=10_000)
    assert len(store) == 5, "without a rebuild, recovered traces are never evicted"

    table.rebuild_index()
    assert len(table) == 5
    table.evict(now_ms=10_000)
    assert len(store) == 0 and len(table) == 0


def test_traces_of_partitions_gone_elsewhere_leave_memory_without_tombstones() -> None:
    store = ChangelogTable()
    table = _table(store)
    keys = [f"{n:032x}" for n in range(40)]
    for key in keys:
        table.save(key, {"spans": {}}, now_ms=10)
    owned_partitions = {0}
    owned = [key for key in keys if key_partition(key, 2) in owned_partitions]
    assert 0 < len(owned) < len(keys)

    table.rebuild_index(lambda key: key_partition(key, 2) in owned_partitions, local=store.data)
    assert sorted(store) == sorted(owned)
    assert len(table) == len(owned)
    # The new owner has the others in the changelog: nothing was deleted through it.
    assert store.tombstones == []
    table.evict(now_ms=10_000)
    assert len(store) == 0 and sorted(store.tombstones) == sorted(owned)


def test_span_summaries_are_stored_packed_and_read_back_after_a_changelog_round_trip() -> None:
    store = ChangelogTable()
    table = _table(store)
    key = "b" * 32
    value = table.load(key)
    # A malformed span id (not 8 bytes) from hostile input must not shift the others.
    summaries = {"00000000000000a1": ("cart", "GET /cart", 0), "a2": ("cart", "db", 2)}
    value["spans"].update(summaries)
    table.save(key, value, now_ms=10)

    stored = store.data[key]
    assert stored == (FORMAT, 10, None, None, None, None, "00000000000000a1,a2", tuple(summaries.values()))
    assert table.span_summaries(key) == summaries
    # Recovery gives back what the changelog's JSON holds: lists where there were tuples.
    store.data[key] = json.loads(json.dumps(store.data[key]))
    table.rebuild_index()
    assert table.span_summaries(key) == {span: list(summary) for span, summary in summaries.items()}
    assert table.load(key)["spans"] == table.span_summaries(key)


def test_saved_values_leave_the_garbage_collectors_walk_once_collected() -> None:
    """Each full collection walks every tracked object, a pause the agents wait through: the table's
    values, two objects per trace, must not be among them."""
    store = ChangelogTable()
    table = _table(store)
    key = "e" * 32
    value = table.load(key)
    value.update(root_service="frontend", root_route="GET /cart", user="hmac:u1")
    value["spans"]["00000000000000e1"] = ("frontend", "GET /cart", 0)
    table.save(key, value, now_ms=10)
    # A tuple is untracked by a collection that finds everything in it untracked; its summaries tuple
    # may come after it in that collection's walk, so the next one does it.
    gc.collect()
    gc.collect()
    assert not gc.is_tracked(store.data[key])
    assert table.context(key) == TraceContext(10, "frontend", "GET /cart", "hmac:u1", None)


@pytest.mark.parametrize("spans", [
    {"00000000000000b1": ["cart", "GET /cart", 1]},  # format 1 before the summaries were packed
    ["00000000000000b1", [["cart", "GET /cart", 1]]],
])
def test_a_value_of_format_1_reads_the_same_and_is_stored_in_the_current_format_on_the_next_save(
    spans: dict | list,
) -> None:
    store = ChangelogTable()
    key = "c" * 32
    store.data[key] = {"t": 5, "root_service": "frontend", "root_route": "GET /cart", "user": "hmac:u1",
                       "spans": spans}
    table = _table(store)
    context = table.context(key)
    assert context is not None and context.root_seen and table.root_seen(key)
    assert context == TraceContext(5, "frontend", "GET /cart", "hmac:u1", None)
    assert table.span_summaries(key) == {"00000000000000b1": ["cart", "GET /cart", 1]}
    value = table.load(key)
    assert "tenant" not in value and value["user"] == "hmac:u1"
    value["spans"]["00000000000000b2"] = ["cart", "db", 0]
    table.save(key, value, now_ms=10)
    ids, summaries = "00000000000000b1,00000000000000b2", (["cart", "GET /cart", 1], ["cart", "db", 0])
    assert store.data[key] == (FORMAT, 10, "frontend", "GET /cart", "hmac:u1", None, ids, summaries)
    assert table.context(key) == TraceContext(10, "frontend", "GET /cart", "hmac:u1", None)


def test_root_seen_reads_either_format_and_unknown_traces_are_not_seen() -> None:
    store = ChangelogTable()
    store.data["a" * 32] = {"t": 5, "spans": {}}  # format 1, no root yet
    store.data["b" * 32] = [FORMAT, 5, None, None, "hmac:u1", None, "", []]  # a user, no root yet
    store.data["c" * 32] = [FORMAT, 5, "frontend", "GET /cart", None, None, "", []]
    table = _table(store)
    assert [table.root_seen(key * 32) for key in "abcd"] == [False, False, True, False]
    assert table.context("d" * 32) is None


def test_a_value_of_a_format_this_code_does_not_know_counts_as_absent_and_is_replaced_on_save() -> None:
    store = ChangelogTable()
    key = "f" * 32
    store.data[key] = [FORMAT + 1, 5, {"a": "layout"}, "of", "a", "newer", "worker", []]
    table = _table(store)
    assert table.context(key) is None and not table.root_seen(key)
    assert table.span_summaries(key) == {}
    value = table.load(key)
    assert value == {"spans": {}}
    value["root_service"] = "frontend"
    table.save(key, value, now_ms=10)
    assert store.data[key][:3] == (FORMAT, 10, "frontend") and table.root_seen(key)


def test_values_of_both_formats_are_evicted_oldest_first() -> None:
    store = ChangelogTable()
    store.data["a" * 32] = {"t": 30, "spans": {}}
    store.data["b" * 32] = [FORMAT, 10, None, None, None, None, "", []]
    store.data["c" * 32] = {"t": 20, "spans": {}}
    table = _table(store)
    table.max_traces = 2
    table.evict(now_ms=25)
    assert sorted(store) == ["a" * 32, "c" * 32]


def test_a_single_span_with_an_empty_id_keeps_its_summary() -> None:
    store = ChangelogTable()
    table = _table(store)
    value = table.load("e" * 32)
    value["spans"][""] = ("cart", "GET /cart", 0)
    table.save("e" * 32, value, now_ms=10)
    assert table.span_summaries("e" * 32) == {"": ("cart", "GET /cart", 0)}


def test_a_trace_without_span_summaries_has_none() -> None:
    store = ChangelogTable()
    table = _table(store)
    table.save("d" * 32, table.load("d" * 32), now_ms=10)
    assert table.span_summaries("d" * 32) == {}
    assert table.load("d" * 32)["spans"] == {}
