"""Cost of the SLI stage without Kafka: ingest, the engine's merge, and memory per service.

    .venv/bin/python benchmarks/sli.py [--spans 100000] [--spans-per-message 500]

- Ingest: `PartialAggregator` on the generated workload, drained once per message as the core does,
  next to protobuf decode of the same messages (the ratio is the figure to compare on a shared
  machine); partials per message and bytes per `sli-partials` record.
- Engine: those partials, tagged with source and offset, decoded from their record values and
  merged (`SliEngine.add`), then the same again (all skipped as duplicates), then evaluated.
- Memory: one service's tiers filled with 30 days of one-minute buckets through the engine's own
  add/roll code; its stored JSON, its Python objects, one evaluation step, one persist.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from typing import Any

import orjson
from _workload import ITEM_NAMES, add_workload_flags, build_workload, host_info, rate, run_stamp, write_json

from telemetry_pipeline.otlp import Signal, decode
from telemetry_pipeline.sli import SliConfig, SliEngine, SliPartial, SloDefaults, SloResolver
from telemetry_pipeline.sli.config import duration_ms
from telemetry_pipeline.sli.partials import PartialAggregator, decode_partials, encode_partials
from telemetry_pipeline.sli.sketch import LatencyMapping, dense_from_counts, hll_of
from telemetry_pipeline.sli.state import ServiceState, StateStore
from telemetry_pipeline.sli.windows import KEYS, NAMES, SPAN_REQ, add_to_finest, new_bucket, roll, tiers_of

MINUTE = 60_000


def ingest_and_merge(args: argparse.Namespace) -> dict[str, Any]:
    workload = build_workload(args)
    config, slos = SliConfig(), SloResolver([], SloDefaults())
    decoded = []
    decode_s = 0.0
    for message in workload.messages:
        started = time.process_time()
        decoded.append((message.signal, decode(message.signal, message.payload)))
        decode_s += time.process_time() - started
    aggregator = PartialAggregator(config, slos)
    partials: list[SliPartial] = []
    started = time.process_time()
    for offset, (signal, message) in enumerate(decoded):
        aggregator.add(signal, message)
        for partial in aggregator.drain():
            partial.source, partial.offset = f"otlp_{signal}[0]", offset
            partials.append(partial)
    ingest_s = time.process_time() - started
    # One record per service and batch of 64 input messages, as the worker produces them.
    records = []
    for start in range(0, len(partials), 64):
        by_service: dict[str, list[SliPartial]] = {}
        for partial in partials[start : start + 64]:
            by_service.setdefault(partial.service, []).append(partial)
        records += [encode_partials(group) for group in by_service.values()]
    engine = SliEngine(config, slos, {})
    started = time.process_time()
    for record in records:
        engine.add(decode_partials(record))
    merge_s = time.process_time() - started
    started = time.process_time()
    for record in records:
        engine.add(decode_partials(record))
    duplicate_s = time.process_time() - started
    started = time.process_time()
    snapshots = engine.flush()
    evaluate_s = time.process_time() - started
    items = workload.items()
    all_items = sum(items.values())
    result = {
        "workload": workload.describe(),
        "ingest_items_per_cpu_s": round(rate(all_items, ingest_s)),
        "ingest_over_decode": round(ingest_s / decode_s, 3),
        "partials": len(partials),
        "partials_per_message": round(len(partials) / len(decoded), 2),
        "records": len(records),
        "bytes_per_record": round(sum(map(len, records)) / len(records)),
        "merge_partials_per_cpu_s": round(rate(len(partials), merge_s)),
        "merge_spans_per_cpu_s": round(rate(items[Signal.TRACES], merge_s)),
        "duplicates_skipped_per_cpu_s": round(rate(len(partials), duplicate_s)),
        "duplicates_skipped": engine.stats()["duplicates_skipped"],
        "snapshots": len(snapshots),
        "evaluate_cpu_s": round(evaluate_s, 3),
    }
    print(
        f"ingest: {all_items:,} items ({', '.join(f'{n:,} {ITEM_NAMES[s]}' for s, n in items.items())}) in "
        f"{len(decoded):,} messages: {result['ingest_items_per_cpu_s']:,} items per CPU s, "
        f"{result['ingest_over_decode']} x the protobuf decode time; {len(partials):,} partials "
        f"({result['partials_per_message']} per message), {len(records):,} records of "
        f"{result['bytes_per_record']:,} bytes"
    )
    print(
        f"engine: merges {result['merge_partials_per_cpu_s']:,} partials per CPU s "
        f"(= {result['merge_spans_per_cpu_s']:,} spans per CPU s of this workload); skips "
        f"{result['duplicates_skipped_per_cpu_s']:,} redelivered partials per CPU s; "
        f"{len(snapshots):,} snapshots in {evaluate_s:.2f} CPU s"
    )
    return result


class _CountingStore(dict):
    """A dict store that counts the JSON bytes assigned to it (what the changelog would carry)."""

    written = 0

    def __setitem__(self, key: str, value: dict) -> None:
        self.written += len(key) + len(orjson.dumps(value))
        super().__setitem__(key, value)


def memory() -> dict[str, Any]:
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
    start = 1_800_000_000_000
    minutes = duration_ms(config.bucket_tiers[-1].until) // MINUTE
    state = ServiceState("svc", 0, 0, tiers=[[] for _ in shape])
    for i in range(minutes):
        add_to_finest(state.tiers, minute_bucket(start + i * MINUTE, i))
        roll(state.tiers, shape, start + (i + 1) * MINUTE)
    end = start + minutes * MINUTE
    state.max_event_ms, state.evaluated_ms = end - 1, end
    state.sources = {f"otlp_spans[{p}]": [10**9, end - 1] for p in range(12)}
    store = _CountingStore()
    StateStore(store).save(state)
    state_json = orjson.dumps(store["svc"])
    buckets_per_tier, objects_size = [len(t) for t in state.tiers], _deep_size(state.tiers)
    store["svc"] = orjson.loads(state_json)  # the engine gets its own copy, as from a changelog
    engine = SliEngine(config, SloResolver([], SloDefaults()), store)
    steps = 10
    engine.add([SliPartial("svc", end + 30_000, [minute_bucket(end, 0)], "otlp_spans[0]", 10**9 + 1)])
    started = time.perf_counter()
    snapshots = engine.advance(idle_now_ms=end + steps * MINUTE + duration_ms(config.allowed_lateness))
    step_ms = (time.perf_counter() - started) / steps * 1000
    store.written = 0
    engine.persist()
    result = {
        "state_json_kib": round(len(state_json) / 1024, 1),
        "state_objects_kib": round(objects_size / 1024, 1),
        "buckets_per_tier": buckets_per_tier,
        "sketch_accuracy_per_tier": [round(mapping.accuracy_at(tier.collapse), 4) for tier in shape],
        "evaluation_step_ms": round(step_ms, 2),
        "snapshots_per_step": len(snapshots) // steps,
        "persist_bytes": store.written,
    }
    print(
        f"state per service at 30 days: {result['state_json_kib']} KiB as JSON, "
        f"{result['state_objects_kib']} KiB of Python objects, "
        f"buckets per tier {result['buckets_per_tier']}; "
        f"one evaluation step {step_ms:.1f} ms ({result['snapshots_per_step']} snapshots); "
        f"one persist writes {store.written:,} bytes"
    )
    return result


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
    add_workload_flags(parser, default_spans=100_000)
    args = parser.parse_args()
    stamp = run_stamp()
    result = {"host": host_info(), **ingest_and_merge(args), "memory": memory()}
    path = args.out / f"{stamp}-sli.json"
    write_json(path, result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
