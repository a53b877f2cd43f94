"""Cost of the SLI core: ingest items/s, and memory and evaluation time per service at full retention.

    python -m telemetry_pipeline.sli.bench [--messages 60]

Ingest uses the synthetic estate of `telemetry_pipeline.generate` (~500 spans or logs per message,
10-20 attributes per span, about a quarter of the spans are requests). Memory fills one service's
tiers with 30 days of one-minute buckets (sketches of 600 log-normal latencies each) through the
same add/roll code the engine runs, then measures the stored JSON and the Python objects.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time

import orjson

from telemetry_pipeline.generate import GeneratorConfig, iter_messages
from telemetry_pipeline.otlp import Encoding, Signal, decode
from telemetry_pipeline.sli.config import SliConfig, SloDefaults, duration_ms
from telemetry_pipeline.sli.engine import SliEngine
from telemetry_pipeline.sli.partials import PartialAggregator, SliPartial
from telemetry_pipeline.sli.sketch import LatencyMapping, dense_from_counts, hll_of
from telemetry_pipeline.sli.slo import SloResolver
from telemetry_pipeline.sli.state import ServiceState, StateStore
from telemetry_pipeline.sli.windows import KEYS, NAMES, SPAN_REQ, add_to_finest, new_bucket, roll, tiers_of


def ingest(messages: int) -> None:
    """Aggregation speed, and its cost relative to decoding the same messages in the same run
    (the machine is shared, so the ratio is the figure to compare)."""
    config = SliConfig()
    by_signal: dict[Signal, list[bytes]] = {}
    for item in itertools.islice(iter_messages(GeneratorConfig(rate=1000.0)), messages):
        by_signal.setdefault(item.signal, []).append(item.message.SerializeToString())
    # Metrics come once per interval: take them from a longer run of their own.
    metrics_only = GeneratorConfig(signals=[Signal.METRICS], duration="1h")
    by_signal[Signal.METRICS] = [item.message.SerializeToString() for item in iter_messages(metrics_only)]
    for signal, payloads in by_signal.items():
        started = time.perf_counter()
        batch = [decode(signal, payload, Encoding.PROTO) for payload in payloads]
        decoding = time.perf_counter() - started
        aggregator = PartialAggregator(config, SloResolver([], SloDefaults()))
        items = sum(_items(signal, m) for m in batch)
        started = time.perf_counter()
        for message in batch:
            aggregator.add(signal, message)
        partials = aggregator.drain()
        elapsed = time.perf_counter() - started
        size = sum(len(p.to_bytes()) for p in partials)
        print(
            f"ingest {signal}: {len(batch)} messages, {items} items: {items / elapsed:,.0f} items/s "
            f"= {elapsed / decoding:.2f} x the protobuf decode time; "
            f"{len(partials)} partials ({size / max(len(partials), 1):,.0f} bytes each)"
        )


def _items(signal: Signal, message: object) -> int:
    if signal is Signal.TRACES:
        return sum(len(s.spans) for r in message.resource_spans for s in r.scope_spans)
    if signal is Signal.LOGS:
        return sum(len(s.log_records) for r in message.resource_logs for s in r.scope_logs)
    return sum(
        len(m.histogram.data_points) + len(m.sum.data_points) + len(m.gauge.data_points)
        for r in message.resource_metrics
        for s in r.scope_metrics
        for m in s.metrics
    )


class _CountingStore(dict):
    """A dict store that counts the JSON bytes assigned to it (what the changelog would carry)."""

    written = 0

    def __setitem__(self, key: str, value: dict) -> None:
        self.written += len(key) + len(orjson.dumps(value))
        super().__setitem__(key, value)


def memory() -> None:
    config = SliConfig()
    mapping = LatencyMapping(config.latency_relative_accuracy)
    rng = random.Random(1)
    minute_sketches = []
    for _ in range(30):
        counts: dict[int, int] = {}
        for _ in range(600):
            index = mapping.index(rng.lognormvariate(4, 0.8))  # median 55 ms, p99 ~350 ms
            counts[index] = counts.get(index, 0) + 1
        minute_sketches.append(dense_from_counts(counts))

    span_names = hll_of(f"GET /api/v1/resource-{i}" for i in range(20))
    attribute_keys = hll_of(f"app.attribute.{i}" for i in range(60))

    def minute_bucket(start_ms: int, i: int) -> list:
        bucket = new_bucket(start_ms)
        bucket[1:7] = [2400, 60, 400, 350, 20, 100]
        bucket[SPAN_REQ] = [600, 3, 590, 0, list(minute_sketches[i % len(minute_sketches)])]
        bucket[NAMES], bucket[KEYS] = span_names, attribute_keys
        return bucket

    shape = tiers_of(config)
    minute = 60_000
    start = 1_800_000_000_000
    minutes = duration_ms(config.bucket_tiers[-1].until) // minute
    state = ServiceState("svc", 0, 0, tiers=[[] for _ in shape])
    for i in range(minutes):
        add_to_finest(state.tiers, minute_bucket(start + i * minute, i))
        roll(state.tiers, shape, start + (i + 1) * minute, {})
    end = start + minutes * minute
    state.max_event_ms, state.evaluated_ms = end - 1, end
    print(
        f"state per service at 30 days: {len(orjson.dumps(state.tiers)) / 1024:,.0f} KiB as JSON, "
        f"{_deep_size(state.tiers) / 1024:,.0f} KiB in memory, "
        f"buckets per tier {[len(t) for t in state.tiers]}, latency sketch accuracy per tier "
        f"{[f'{mapping.accuracy_at(tier.collapse):.1%}' for tier in shape]}"
    )
    for state_keys in ("service", "bucket"):
        config = SliConfig(state_keys=state_keys)
        store = _CountingStore()
        copy = ServiceState(
            "svc", state.max_event_ms, state.evaluated_ms, tiers=orjson.loads(orjson.dumps(state.tiers))
        )
        everything = {(level, bucket[0]): bucket for level, tier in enumerate(copy.tiers) for bucket in tier}
        StateStore(store, len(shape), per_bucket=state_keys == "bucket").save(copy, everything)
        engine = SliEngine(config, SloResolver([], SloDefaults()), store)
        store.written = 0
        engine.add([SliPartial("svc", end + 30_000, minute_bucket(end, 0))])
        added = store.written
        store.written = 0
        steps = 10
        started = time.perf_counter()
        snapshots = engine.advance(idle_now_ms=end + steps * minute + duration_ms(config.allowed_lateness))
        elapsed = (time.perf_counter() - started) / steps
        print(
            f"state_keys={state_keys}: {len(store)} keys; one batch for the service writes {added:,} bytes; "
            f"one evaluation step takes {elapsed * 1000:.1f} ms ({len(snapshots) // steps} snapshots); "
            f"advancing {steps} steps writes {store.written:,} bytes"
        )


def _deep_size(obj: object, seen: set[int] | None = None) -> int:
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(_deep_size(k, seen) + _deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, list):
        size += sum(_deep_size(item, seen) for item in obj)
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=60, help="generated messages for the ingest figure")
    args = parser.parse_args()
    ingest(args.messages)
    memory()


if __name__ == "__main__":
    main()
