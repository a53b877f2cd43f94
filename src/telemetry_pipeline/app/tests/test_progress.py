"""Progress reports go to every `sli-partials` partition, per batch and on change, never per record."""

from aiokafka.partitioner import murmur2

from telemetry_pipeline.app.progress import ProgressReporter, keys_per_partition
from telemetry_pipeline.sli import SliPartial, SourceProgress, decode_record
from telemetry_pipeline.sli.windows import new_bucket


def test_one_key_per_partition() -> None:
    keys = keys_per_partition(4)
    assert [(murmur2(key) & 0x7FFFFFFF) % 4 for key in keys] == [0, 1, 2, 3]


def test_a_batch_reports_each_source_at_its_newest_event_on_every_partition() -> None:
    reporter = ProgressReporter("sli-partials", 4)
    partials = [
        SliPartial("checkout", 5_000, [new_bucket(0)], "otlp_spans[0]", 7),
        SliPartial("payment", 9_000, [new_bucket(0)], "otlp_spans[0]", 8),
        SliPartial("checkout", 3_000, [new_bucket(0)], "otlp_logs[1]", 2),
        SliPartial("checkout", 99_000, [], "otlp_logs[1]", 2, redactions={"card": 1}),  # a note: no time
    ]
    records = reporter.after_batch(partials)
    assert len(records) == 4 and len({record.key for record in records}) == 4
    assert decode_record(records[0].value) == (
        [],
        [SourceProgress("otlp_logs[1]", 3_000, False), SourceProgress("otlp_spans[0]", 9_000, False)],
    )
    assert reporter.after_batch([]) == []


def test_the_tick_reports_on_change_and_repeats_now_and_then() -> None:
    reporter = ProgressReporter("sli-partials", 2)
    assert len(reporter.on_tick({"otlp_spans[0]": False}, 1_000)) == 2
    assert reporter.on_tick({"otlp_spans[0]": False}, 2_000) == []  # nothing new
    assert len(reporter.on_tick({"otlp_spans[0]": True}, 2_500)) == 2  # read to its end now
    reporter.after_batch([SliPartial("checkout", 5_000, [new_bucket(0)], "otlp_spans[0]", 9)])
    caught_up = reporter.on_tick({"otlp_spans[0]": True}, 3_000)  # a batch said "not" since: say it again
    assert decode_record(caught_up[0].value)[1] == [SourceProgress("otlp_spans[0]", None, True)]
    assert reporter.on_tick({"otlp_spans[0]": True}, 4_000) == []
    assert len(reporter.on_tick({"otlp_spans[0]": True}, 8_100)) == 2  # repeated for peers that missed it
