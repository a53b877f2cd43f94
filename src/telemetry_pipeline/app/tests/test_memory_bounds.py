"""The worker settings that bound its memory reach Faust and aiokafka, and the bounds hold."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import faust
import pytest

from telemetry_pipeline.app.worker import _Shell, chunks_of_bytes, create_app
from telemetry_pipeline.config import ConfigError, PipelineConfig, load_config
from telemetry_pipeline.core import Core
from telemetry_pipeline.otlp import Signal


def _event(size: int) -> SimpleNamespace:
    return SimpleNamespace(message=SimpleNamespace(value=b"x" * size))


def test_a_batch_is_cut_in_runs_of_at_most_max_bytes_in_order() -> None:
    events = [_event(size) for size in (400, 300, 200, 900, 100, 100, 2500, 50)]
    runs = list(chunks_of_bytes(events, 1000))
    assert [[len(e.message.value) for e in run] for run in runs] == [
        [400, 300, 200],
        [900, 100],
        [100],
        [2500],  # larger than the bound: alone, never split or dropped
        [50],
    ]
    assert [e for run in runs for e in run] == events


def test_an_event_without_a_value_counts_as_empty() -> None:
    events = [SimpleNamespace(message=SimpleNamespace(value=None)), _event(10)]
    assert list(chunks_of_bytes(events, 5)) == [events[:1], events[1:]]


def test_the_fetch_and_buffer_settings_reach_faust_and_aiokafka(tmp_path: Path) -> None:
    config = PipelineConfig.model_validate(
        {
            "worker": {
                "data_dir": str(tmp_path),
                "metrics_port": None,
                "consumer_max_fetch_bytes": 3_000_000,
                "consumer_fetch_response_bytes": 7_000_000,
                "consumer_max_poll_records": 33,
                "stream_buffer_messages": 55,
            }
        }
    )

    async def built() -> tuple[faust.App, object]:
        app = create_app(config)
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        await consumer.stop()  # never started: releases its client
        return app, consumer

    app, consumer = asyncio.run(built())
    assert consumer._max_partition_fetch_bytes == 3_000_000
    assert consumer._fetch_max_bytes == 7_000_000
    assert consumer._max_poll_records == 33
    assert app.conf.stream_buffer_maxsize == 55


@pytest.mark.parametrize(
    "field",
    [
        "batch_max_bytes",
        "consumer_fetch_response_bytes",
        "consumer_max_poll_records",
        "stream_buffer_messages",
    ],
)
def test_a_bound_of_zero_fails_at_start_naming_the_field(field: str) -> None:
    with pytest.raises(ConfigError, match=f"worker.{field}"):
        load_config(environ={f"TP_WORKER__{field.upper()}": "0"})


def _shell_with_hold(held_bytes: int, backlog: bool) -> SimpleNamespace:
    """A shell whose core has `held_bytes` in the hold (`worker.hold_wait_bytes` 1,000), a spans
    backlog or not, and whose spans outrun the logs while `core.outrun` says so."""
    held = SimpleNamespace(held_bytes=held_bytes)
    core = SimpleNamespace(held=held, spans_backlog=lambda: backlog, outrun=False, _hold_wait_bytes=1000)
    core.spans_outrun_logs = lambda: core.outrun
    core.logs_outrun_spans = lambda: Core.logs_outrun_spans(core)
    return SimpleNamespace(core_ready=lambda: True, core=lambda: core)


def _logs_stream(buffered: int = 0) -> SimpleNamespace:
    """The logs agent's stream, with its buffer (Faust's channel queue) holding `buffered` records."""
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=4)
    for record in range(buffered):
        queue.put_nowait(record)
    return SimpleNamespace(channel=SimpleNamespace(queue=queue))


def test_the_logs_agent_waits_while_the_hold_is_over_its_bound_behind_a_spans_backlog() -> None:
    shell = _shell_with_hold(5000, backlog=True)

    async def scenario() -> bool:
        waiting = asyncio.create_task(_Shell.has_room(shell, Signal.LOGS, _logs_stream()))
        await asyncio.sleep(0.1)
        still_waiting = not waiting.done()
        shell.core().held.held_bytes = 900  # the spans agent released some
        await asyncio.wait_for(waiting, timeout=10)
        return still_waiting

    assert asyncio.run(scenario())


def test_the_logs_agent_stops_waiting_once_its_buffer_is_full() -> None:
    # Faust's conductor waits at a full logs buffer with the spans records of the same fetch behind it:
    # waiting on would wait for spans that cannot come.
    shell = _shell_with_hold(5000, backlog=True)

    async def scenario() -> bool:
        stream = _logs_stream(buffered=3)
        waiting = asyncio.create_task(_Shell.has_room(shell, Signal.LOGS, stream))
        await asyncio.sleep(0.1)
        still_waiting = not waiting.done()
        stream.channel.queue.put_nowait(3)  # the conductor fills it
        await asyncio.wait_for(waiting, timeout=10)
        return still_waiting

    assert asyncio.run(scenario())


def test_the_spans_wait_while_they_outrun_the_logs_and_the_logs_then_never_wait() -> None:
    # Each waiting for the other would stop both.
    shell = _shell_with_hold(5000, backlog=True)

    async def scenario() -> tuple[bool, bool]:
        logs = asyncio.create_task(_Shell.has_room(shell, Signal.LOGS, _logs_stream()))
        await asyncio.sleep(0.1)
        logs_waited = not logs.done()
        shell.core().outrun = True  # the spans are read past the logs, the table past half full
        await asyncio.wait_for(logs, timeout=10)
        spans = asyncio.create_task(_Shell.has_room(shell, Signal.TRACES, _logs_stream()))
        await asyncio.sleep(0.1)
        spans_waited = not spans.done()
        shell.core().outrun = False  # the logs caught up
        await asyncio.wait_for(spans, timeout=10)
        return logs_waited, spans_waited

    assert asyncio.run(scenario()) == (True, True)


@pytest.mark.parametrize(("held_bytes", "backlog"), [(5000, False), (900, True)])
def test_no_wait_without_a_spans_backlog_or_with_room(held_bytes: int, backlog: bool) -> None:
    # Without a spans backlog the wall-clock grace alone empties the hold: waiting would only slow.
    shell = _shell_with_hold(held_bytes, backlog)
    asyncio.run(asyncio.wait_for(_Shell.has_room(shell, Signal.LOGS, _logs_stream()), timeout=1))
