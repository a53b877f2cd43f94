"""The core's output for a fixed generated input, pinned byte for byte: speed work must not change it.

The input (seeded, a few hundred messages of each signal, some traces split so that messages are held,
some messages as OTLP/JSON, some garbage) runs through `Core.process` in batches like the worker's. Each
output stream (clean records per signal, DLQ records, SLI partials, the order inputs finish in, the
core's and the enricher's counters) is written as its sha256 and size to
tests/testdata/core/digests.txt, one line each, so a difference names the stream. `TP_UPDATE_GOLDEN=1`
rewrites the file after an intended change.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import orjson

from telemetry_pipeline.config import load_config
from telemetry_pipeline.core import Core, CoreResult, InputRecord
from telemetry_pipeline.enrichment import UserDirectory
from telemetry_pipeline.generate import GeneratorConfig, context_records, iter_messages
from telemetry_pipeline.otlp import Signal, decode, message_to_json
from telemetry_pipeline.sli.partials import encode_partials
from tests.golden import check_golden

FOLDER = Path(__file__).resolve().parent / "testdata" / "core"
MESSAGES_PER_SIGNAL = 300
BATCH_MESSAGES = 16
JSON_EVERY = 25  # every 25th message goes in as an OTLP/JSON line
GENERATOR = GeneratorConfig(
    seed=11,
    services=6,
    duration=timedelta(minutes=20),
    rate=2.0,
    spans_per_message=20,
    logs_per_message=2,
    metrics_interval=timedelta(seconds=1),
    key="trace_id",
    split_traces=0.1,
    attributes_per_span=(8, 16),
    pii_share=0.1,
    faults=[{"kind": "garbage", "at": "PT1M", "share": 0.01}],
)


def _inputs() -> Iterator[tuple[InputRecord, int]]:
    """(record, event time in ms) in generated order, until each signal has MESSAGES_PER_SIGNAL."""
    counts: dict[Signal, int] = defaultdict(int)
    for position, message in enumerate(iter_messages(GENERATOR)):
        if all(counts[signal] >= MESSAGES_PER_SIGNAL for signal in Signal):
            return
        counts[message.signal] += 1
        signal: Signal | None = message.signal
        value = message.payload
        if position % JSON_EVERY == 0 and not message.is_garbage:
            signal, value = None, orjson.dumps(message_to_json(decode(message.signal, value)))
        source = f"golden-{message.signal}[0]"
        yield InputRecord(signal, message.key, value, source, position), message.event_time_ns // 1_000_000


def _streams() -> dict[str, bytes]:
    users_table, services = context_records(GENERATOR)
    users = UserDirectory()
    users.load(users_table)
    config = load_config(environ={"TP_REDACTION__HMAC_KEY": "core-golden-test-key-0123456789"})
    core = Core(config, trace_store={}, users=users, services=services, wall_clock=False)
    streams: dict[str, list[bytes]] = defaultdict(list)

    def collect(result: CoreResult) -> None:
        for record in result.clean:
            line = orjson.dumps([(record.key or b"").hex(), record.value.hex()])
            streams[f"clean.{record.signal}"].append(line)
        for dlq in result.dlq:
            streams["dlq"].append(orjson.dumps([dlq.reason, dlq.origin.location, dlq.origin.value.hex()]))
        streams["partials"].extend(encode_partials([partial]) for partial in result.partials)
        streams["finished"].extend(record.location.encode() for record in result.finished)

    batch: list[InputRecord] = []
    now_ms = 0
    for record, event_ms in _inputs():
        batch.append(record)
        now_ms = max(now_ms, event_ms)
        if len(batch) == BATCH_MESSAGES:
            collect(core.process(batch, now_ms))
            collect(core.release(now_ms))
            batch = []
    collect(core.process(batch, now_ms))
    collect(core.release(now_ms, everything=True))
    stats = core.stats
    streams["stats"].append(
        orjson.dumps(
            {
                "records_in": stats.records_in,
                "items_out": stats.items_out,
                "dlq": stats.dlq,
                "redactions": {f"{service}/{name}": n for (service, name), n in stats.redactions.items()},
                "enrichment": core.enricher.stats().as_dict(),
            },
            option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
        )
    )
    return {name: b"\n".join(lines) for name, lines in sorted(streams.items())}


def test_the_core_output_for_a_fixed_input_is_unchanged() -> None:
    streams = _streams()
    # The input exercises every path the digests are meant to pin.
    assert {"clean.traces", "clean.logs", "clean.metrics", "dlq", "partials"} <= set(streams)
    digests = "".join(
        f"{name} {hashlib.sha256(data).hexdigest()} {len(data.splitlines())} lines\n"
        for name, data in streams.items()
    )
    check_golden(FOLDER, {"digests.txt": digests.encode()}, "core")
