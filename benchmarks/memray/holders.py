"""Live bytes at a memray capture's high-water mark, by what holds them.

    .venv/bin/python benchmarks/memray/holders.py CAPTURE_FILE

Each allocation goes to the first place in its stack (innermost frame first) that the table below
names; allocations made while importing go to "code".
"""

from __future__ import annotations

import sys
from collections import Counter

import memray

PLACES = (
    ("aiokafka/protocol/types.py", "aiokafka fetch responses (raw bytes)"),
    ("aiokafka/consumer/fetcher.py", "aiokafka records unpacked from them (values copied)"),
    ("aiokafka/", "aiokafka (other)"),
    ("asyncio/streams.py", "aiokafka socket read buffers"),
    ("trace_context.py", "trace-context table (values, index) and its changelog records"),
    ("faust/utils/json.py", "trace-context table (values, index) and its changelog records"),
    ("otlp/codec.py encode", "encoded outputs of the batch in hand, awaiting delivery"),
    ("otlp/codec.py decode", "decoded messages of the batch in hand (protobuf)"),
    ("enrichment/enricher.py", "decoded messages of the batch in hand (protobuf)"),
    ("redaction/", "redaction (caches, databases)"),
    ("detection/", "detection"),
    ("sli/", "SLI aggregation"),
    ("enrichment/hold.py", "held messages"),
    ("importlib", "code: modules, compiled patterns"),
    ("<module>", "code: modules, compiled patterns"),
)


def holders(path: str) -> tuple[int, Counter[str]]:
    reader = memray.FileReader(path)
    by_place: Counter[str] = Counter()
    for record in reader.get_high_watermark_allocation_records(merge_threads=True):
        frames = [f"{file} {function}:{line}" for function, file, line in record.stack_trace()]
        place = next(
            (name for frame in frames for marker, name in PLACES if marker in frame),
            "other",
        )
        by_place[place] += record.size
    return reader.metadata.peak_memory, by_place


def main() -> int:
    peak, by_place = holders(sys.argv[1])
    total = sum(by_place.values()) or 1
    print(f"high-water mark: {peak / 2**20:.1f} MB of heap")
    for name, size in by_place.most_common():
        print(f"{size / 2**20:7.1f} MB {size / total:6.1%}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
