"""Faust wiring: one ingest agent per signal, the SLI agent, a tick timer, and the context followers.

Every agent takes input in batches without acknowledging it (`noack_take`), runs the core, delivers
the outputs with confluent-kafka and only then acknowledges the inputs the core reports finished;
Faust commits the highest contiguous acknowledged offset, so a crash replays rather than loses.
Agents keep concurrency 1 (FAUST-NOTES #606).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping

import faust
import pydantic
from aiokafka.partitioner import murmur2
from faust.exceptions import ConsumerNotStarted
from faust.serializers import codecs
from faust.types import TP, EventT, StreamT

from telemetry_pipeline.analysis import Analysis
from telemetry_pipeline.app import lograte
from telemetry_pipeline.app.alignment import metrics_ahead, of_topic
from telemetry_pipeline.app.commits import CommitGuard
from telemetry_pipeline.app.context_sources import CompactedTopicFollower
from telemetry_pipeline.app.delivery import Delivery, OutboundRecord, Sending
from telemetry_pipeline.app.metrics import WorkerMetrics
from telemetry_pipeline.app.ordering import InputOrder
from telemetry_pipeline.app.progress import ProgressReporter
from telemetry_pipeline.app.startup import check_changelog_partitions, freeze_startup_objects
from telemetry_pipeline.app.tables import DeliveredTable, await_changelog_topics
from telemetry_pipeline.config import PipelineConfig
from telemetry_pipeline.core import Core, CoreResult, DlqRecord, InputRecord
from telemetry_pipeline.detection import IncidentEvent, MaintenanceWindow
from telemetry_pipeline.enrichment import UserDirectory
from telemetry_pipeline.kafka.connection import faust_credentials
from telemetry_pipeline.otlp import Signal
from telemetry_pipeline.sli import (
    PartialsError,
    SliPartial,
    SourceProgress,
    decode_record,
    duration_ms,
    encode_partials,
)

log = logging.getLogger(__name__)

# A partition's end offset from the fetcher's last response is used when no older than this; else it is
# asked from the broker (a round trip, seconds under load).
_FETCH_FRESH_MS = 5_000
_FETCH_STAMP_MARGIN_MS = 3_000
# How often an ingest agent waiting for room (`_Shell.has_room`) looks again: a full buffer found late
# holds up every input's records behind it.
_HOLD_POLL_S = 0.02


class _Utf8Codec(codecs.Codec):
    """Table keys as plain UTF-8: the changelog key bytes equal the input record key bytes, so
    murmur2 puts a trace's context on the partition number its records arrive on."""

    def _dumps(self, obj: str) -> bytes:
        return obj.encode()

    def _loads(self, s: bytes) -> str:
        return s.decode()


codecs.register("utf8", _Utf8Codec())


def _keyed_table(app: faust.App, name: str, value_serializer: str = "json") -> DeliveredTable:
    table = app.tables.add(DeliveredTable(app, name=name, default=None, beacon=app.tables.beacon))
    # Faust derives serializers from key_type/value_type only (json here). `take_changes` writes the
    # keys as UTF-8 and the values with the table's value serializer, but recovery decodes with the
    # changelog topic's, which TableManager.add already built with json keys: rebuild it with ours, or
    # a restarted worker fails to decode every key ("Error in recovery") and comes back empty.
    table.key_serializer = "utf8"
    table.value_serializer = value_serializer
    table.changelog_topic = table._new_changelog_topic()
    return table


def _keep_queues_on_resume(app: faust.App) -> None:
    """Work around faust-streaming#596. After a rebalance Faust resumes the input partitions, seeks
    them to the committed offsets, then `flow_control.resume()` clears every stream queue: records
    fetched in between are dropped, and the partition's commits stall at the gap (or, with no
    committed offset yet, the records are skipped until the next restart). Revocation already
    clears the queues after pausing the partitions, so resuming need not clear them again; what
    is kept may be fetched again after the seek, a duplicate rather than a loss (at-least-once).
    """
    flow_control = app.flow_control

    def resume() -> None:
        flow_control._suspend.clear()
        flow_control._resume.set()

    flow_control.resume = resume  # type: ignore[method-assign]


def _bound_fetch_responses(app: faust.App, max_bytes: int) -> None:
    """aiokafka's `fetch_max_bytes` (the most one fetch response brings, all partitions together),
    which Faust does not pass on: without it, 50 MiB per response, live while its records are handed
    out and again while the next one is read. (Faust's 1.5 s `fetch_max_wait_ms` stays: see
    benchmarks/README.md, "Deliveries in flight", why 100 ms was withdrawn.)"""
    thread = app.consumer._thread  # type: ignore[attr-defined]
    create = thread._create_worker_consumer

    def create_bounded(transport: object) -> object:
        consumer = create(transport)
        consumer._fetch_max_bytes = max_bytes  # read by its start(), which builds the fetcher
        return consumer

    thread._create_worker_consumer = create_bounded


def key_partition(key: str, partitions: int) -> int:
    """The partition a record or changelog entry keyed `key` goes to: murmur2, as Kafka's Java
    clients, Faust's tables (use_partitioner) and our producers place them."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def create_app(config: PipelineConfig) -> faust.App:
    kafka = config.kafka
    worker = config.worker
    app = faust.App(
        worker.app_id,
        broker=[f"kafka://{server}" for server in kafka.bootstrap_servers.split(",")],
        broker_credentials=faust_credentials(kafka),
        # memory:// tables replay their (compacted, bounded) changelog on start; rocksdb's store
        # needs a current event for every write, which batch processing and timers don't have.
        store="memory://",
        datadir=str(worker.data_dir),
        topic_partitions=worker.table_partitions,
        consumer_auto_offset_reset="earliest",
        producer_linger_ms=kafka.producer_linger_ms,
        producer_max_batch_size=kafka.producer_batch_bytes,
        producer_compression_type=None
        if kafka.producer_compression == "none"
        else kafka.producer_compression,
        broker_commit_interval=1.0,
        broker_session_timeout=worker.session_timeout_s,
        consumer_group_instance_id=worker.group_instance_id,
        # Messages held for their trace context are not acknowledged until they go out; at shutdown
        # Faust would wait for them until it is killed. Not waiting leaves them uncommitted, to be
        # processed again by the next worker (at-least-once).
        stream_wait_empty=False,
        # Fetched ahead per partition; with the response bound below and the stream buffer, what a
        # backlog can fill (benchmarks/README.md, "Memory flat across backlog sizes").
        consumer_max_fetch_size=worker.consumer_max_fetch_bytes,
        stream_buffer_maxsize=worker.stream_buffer_messages,
        broker_max_poll_records=worker.consumer_max_poll_records,
        web_enabled=False,
    )
    _keep_queues_on_resume(app)
    _bound_fetch_responses(app, worker.consumer_fetch_response_bytes)
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    topics = config.topics
    ordered = {topics.input(signal) for signal in Signal} | {topics.sli_partials}
    order = InputOrder(ordered)
    order.install(app.consumer)

    # Keyed by trace id with the producer's murmur2 partitioner, so a trace's context lands on the
    # changelog partition of the input partition its records arrive on (when inputs are keyed by
    # trace id, as the Collector's partition_traces_by_id does).
    trace_context = _keyed_table(app, "trace-context")
    # Values kept as their changelog's JSON bytes (sli/state.py): a service's state is ~4x that as objects.
    sli_state = _keyed_table(app, "sli-state", value_serializer="raw")
    users = UserDirectory()
    services: dict[str, dict] = {}
    metrics = WorkerMetrics(worker.metrics_port, worker.metrics_host)
    shell = _Shell(app, config, trace_context, sli_state, users, services, metrics, order)
    # Now, not on the first batch: building the core compiles the redaction prefilter (about 2 s of
    # CPU), which the first messages after joining the group waited for (the p99 of a paced run).
    # The recovered trace-context table is indexed by `reindex_trace_context` below.
    shell.core()

    @sli_state.on_recover
    async def adopt_sli_services() -> None:
        """After every rebalance: the engine drops services that moved away, loads those that came."""
        if shell.analysis_ready():
            shell.analysis().adopt(shell.owns_service)

    @trace_context.on_recover
    async def reindex_trace_context() -> None:
        """After every rebalance: index the traces Faust recovered (else they are never evicted) and
        drop from memory those of partitions gone elsewhere. Before the core exists, building it
        indexes the recovered store."""
        if shell.core_ready():
            owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == topics.spans}
            shell.core().enricher.traces.rebuild_index(
                lambda key: key_partition(key, worker.table_partitions) in owned, local=trace_context.data
            )

    @app.on_partitions_assigned.connect
    async def joined(_app: faust.App, assigned: set[TP], **_kwargs: object) -> None:
        shell.joined.set()

    @app.on_before_shutdown.connect
    async def flush_deliveries(_app: faust.App, **_kwargs: object) -> None:
        await shell.flush_deliveries()

    for signal in Signal:
        _ingest_agent(app, shell, signal, app.topic(topics.input(signal), **raw))

    @app.agent(app.topic(topics.sli_partials, **raw))
    async def sli(stream: StreamT) -> None:
        """Partials are merged in memory and acknowledged once the state holding them is written to
        the table (at an evaluation step, or every `sli_persist_interval_s`); what a restart reads
        again, the engine recognises by source offset and skips."""
        delivery = shell.delivery()
        await shell.start_agent(stream)
        # The SLOs (catalog overrides) and maintenance windows come from the context topics: a step
        # evaluated before they are read would burn against the default SLO and page or resolve
        # differently from replay (seen after a restart: a page resolved during its outage).
        await shell.context_loaded()
        async for taken in stream.noack_take(worker.batch_max_messages, within=worker.batch_within_s):
            events = await shell.order.admit(taken)
            now = _now_ms()
            by_channel: dict[str, list[SliPartial]] = {}  # per sli-partials partition, in its order
            reports: dict[str, list[SourceProgress]] = {}  # progress reports, per partition
            rejected = CoreResult()
            for event in events:
                try:
                    decoded, progress = decode_record(event.value)
                except PartialsError as exc:  # not ours: to the DLQ, never into the SLIs
                    record = _input_record(None, stream, event)
                    rejected.dlq.append(DlqRecord(f"sli: {exc}", record))
                    rejected.finished.append(record)
                    continue
                channel = _source_name(event.message.tp)
                if decoded:
                    by_channel.setdefault(channel, []).extend(decoded)
                if progress:
                    reports.setdefault(channel, []).extend(progress)
                shell.sli_unacked.append((stream, event))
            if by_channel:  # before any await: the tick must not take this moment for idle
                shell.last_partial_ms = now
            analysis = shell.analysis()
            # Every assigned input partition holds the watermark from its assignment, not only from the
            # tick's first look at it (partials may come first; a source unheard of would not count).
            analysis.set_sources(shell.sources.declared(), wall_ms=now, channels=shell.sources.channels())
            analysis.engine.expect_sources(shell.sources.every_input())
            for channel, partials in by_channel.items():
                analysis.add(partials, wall_ms=now, channel=channel)
            for channel, progress in reports.items():  # after the partials they cover
                analysis.engine.add_progress(progress, wall_ms=now, channel=channel)
            shell.sources.processed(events)
            await shell.emit(rejected, delivery)
            await shell.advance_sli(delivery, now)

    @app.timer(interval=worker.tick_interval_s)
    async def tick() -> None:
        """Tell the cores which input partitions are caught up; release held messages the spans'
        progress (or, with no backlog, the grace) lets go; let an idle input move the SLI watermark."""
        delivery = shell.tick_delivery
        now = _now_ms()
        inputs_done, sli_done = await shell.sources.caught_up()
        reports = shell.progress.on_tick(inputs_done, now)
        if reports:
            await delivery.send(reports)
        if shell.core_ready():
            inputs = {signal: of_topic(topics.input(signal), inputs_done) for signal in Signal}
            live = all(shell.sources.live(topics.input(signal)) for signal in (Signal.TRACES, Signal.LOGS))
            shell.core().set_sources(inputs[Signal.TRACES], inputs[Signal.LOGS], live=live)
        shell.pace_inputs(inputs_done)
        if shell.core_ready():
            await shell.emit(shell.core().release(now), delivery)
        if shell.analysis_ready() or shell.sli_state_pending():
            analysis = shell.analysis()
            analysis.set_sources(sli_done, wall_ms=now, channels=shell.sources.channels())
            analysis.engine.expect_sources(shell.sources.every_input())
            # Wall time moves the watermark only once every input is read to its end and quiet: with
            # lag, the data still to come decides.
            idle = analysis.engine.sources_caught_up() and now - shell.last_partial_ms > shell.idle_after_ms
            await shell.advance_sli(delivery, now, idle=idle)
        metrics.observe(shell)

    # Started with the app, before its consumer joins the group, not as an `app.service` (which Faust
    # starts only once the tables are recovered, after the join): the first records waited ~1.5 s for
    # the context topics to be read (the p99 of a paced run; benchmarks/README.md, "Latency").
    for follower in shell.followers:
        app.add_dependency(follower)
    return app


def _apply_to(table: dict[str, dict]):
    def apply(key: str, value: dict | None) -> None:
        if value is None:
            table.pop(key, None)  # a tombstone
        else:
            table[key] = value

    return apply


def _ingest_agent(app: faust.App, shell: _Shell, signal: Signal, topic: faust.TopicT) -> None:
    worker = shell.config.worker

    async def ingest(stream: StreamT) -> None:
        delivery = shell.delivery()
        await shell.start_agent(stream)
        await shell.context_loaded()

        async def finish(
            chunk: list[EventT], records: list[InputRecord], result: CoreResult, sending: Sending
        ) -> None:
            try:
                await shell.delivered(result, sending, delivery)
            except Exception as exc:
                await shell.emit(_rejected(signal, records, exc), delivery)
            # Their partials are delivered: the SLI side may wait for them.
            shell.sources.processed(chunk)

        # The last run, from when its outputs are produced until they are acknowledged and its inputs
        # released: it is delivered while the next run is processed.
        in_flight: asyncio.Future[None] | None = None
        async for taken in stream.noack_take(worker.batch_max_messages, within=worker.batch_within_s):
            events = await shell.order.admit(taken)
            for chunk in chunks_of_bytes(events, worker.batch_max_bytes):
                await shell.has_room(signal, stream)
                records = [_input_record(signal, stream, event) for event in chunk]
                try:
                    result = shell.core().process(records, _now_ms())
                    sending = await delivery.produce(shell.outbound(result))
                except Exception as exc:
                    result = _rejected(signal, records, exc)
                    sending = await delivery.produce(shell.outbound(result))
                # Inputs are released in order, and at most two runs' outputs wait in librdkafka.
                if in_flight is not None:
                    await in_flight
                in_flight = asyncio.ensure_future(finish(chunk, records, result, sending))

    ingest.__name__ = f"ingest_{signal}"
    app.agent(topic, name=f"ingest-{signal}")(ingest)


def _rejected(signal: Signal, records: list[InputRecord], exc: Exception) -> CoreResult:
    """A run the core or the delivery failed on goes to the DLQ whole, and the partition moves on: a
    crashed agent would be restarted on the same stream with its batch gone (see app/commits.py)."""
    log.error(
        "ingest-%s: %s on a batch of %d records; sending them to the DLQ",
        signal,
        type(exc).__name__,
        len(records),
        exc_info=log.isEnabledFor(logging.DEBUG),
    )
    reason = f"internal: {type(exc).__name__} while processing"
    return CoreResult(dlq=[DlqRecord(reason, r) for r in records], finished=records)


def chunks_of_bytes(events: list[EventT], max_bytes: int) -> Iterator[list[EventT]]:
    """The batch in runs of consecutive events whose values add up to at most `max_bytes` (an event
    larger than that alone): the core holds a run decoded (several times its encoded size) and its
    outputs encoded until they are delivered, so the run's bytes, not its message count, bound that."""
    chunk: list[EventT] = []
    size = 0
    for event in events:
        value_bytes = len(event.message.value or b"")
        if chunk and size + value_bytes > max_bytes:
            yield chunk
            chunk, size = [], 0
        chunk.append(event)
        size += value_bytes
    if chunk:
        yield chunk


def _input_record(signal: Signal | None, stream: StreamT, event: EventT) -> InputRecord:
    message = event.message
    return InputRecord(
        signal,
        message.key,
        message.value,
        f"{message.topic}[{message.partition}]",
        message.offset,
        ref=(stream, event),
    )


class MaintenanceWindows:
    """The windows in force: the config's, and the `maintenance` topic's (key: window id; value: the
    config entry's other fields; a tombstone withdraws it), which replace config windows of their id."""

    def __init__(
        self, configured: Iterable[MaintenanceWindow], changed: Callable[[list[MaintenanceWindow]], None]
    ) -> None:
        self._configured = {window.id: window for window in configured}
        self._from_topic: dict[str, MaintenanceWindow] = {}
        self._changed = changed

    def apply(self, window_id: str, value: dict | None) -> None:
        """A record of the topic. An invalid one is logged by field (never its values) and skipped."""
        if value is None:
            self._from_topic.pop(window_id, None)
        else:
            try:
                self._from_topic[window_id] = MaintenanceWindow.model_validate({**value, "id": window_id})
            except pydantic.ValidationError as exc:
                fields = sorted({".".join(map(str, error["loc"])) or "value" for error in exc.errors()})
                log.warning("maintenance window %r ignored: invalid %s", window_id, ", ".join(fields))
                return
        self._changed(self.windows())

    def windows(self) -> list[MaintenanceWindow]:
        return list({**self._configured, **self._from_topic}.values())


class _Shell:
    """What the agents share: the core and the analysis (built after table recovery), outputs."""

    def __init__(self, app, config, trace_context, sli_state, users, services, metrics, order) -> None:
        self._app = app
        self.order: InputOrder = order  # what the agents may process, partition by partition
        self.config = config
        self._trace_context = trace_context
        self._sli_state = sli_state
        self._users = users
        self._services = services
        self._core: Core | None = None
        self._analysis: Analysis | None = None
        self.metrics = metrics
        self.last_partial_ms = _now_ms()
        self.sources = _Sources(app, config)
        self.progress = ProgressReporter(config.topics.sli_partials, config.worker.table_partitions)
        self.paused: dict[Signal, set[TP]] = {Signal.METRICS: set(), Signal.TRACES: set()}  # `pace_inputs`
        self.idle_after_ms = duration_ms(config.sli.idle_after)
        self.sli_unacked: list[tuple[StreamT, EventT]] = []  # partials merged but not yet persisted
        self._advancing = asyncio.Lock()
        self._deliveries: list[Delivery] = []
        self.tick_delivery = self.delivery()
        self.commit_guard = CommitGuard()
        self.joined = asyncio.Event()  # set when the consumer group first assigns partitions
        self.context_waited = False  # set once an agent has waited for the context topics (`context_loaded`)
        self._guard_installed = False
        kafka, context = config.kafka, config.context
        self.maintenance = MaintenanceWindows(config.maintenance, self._maintenance_changed)
        self.followers = [
            CompactedTopicFollower(kafka, context.user_context_topic, users.update),
            CompactedTopicFollower(kafka, context.service_catalog_topic, _apply_to(services)),
            CompactedTopicFollower(kafka, config.topics.maintenance, self.maintenance.apply),
        ]

    def _maintenance_changed(self, windows: list[MaintenanceWindow]) -> None:
        if self.analysis_ready():
            self.analysis().set_maintenance(windows)

    async def context_loaded(self) -> None:
        """Wait (bounded, from when the group is joined: no record arrives before) until the context
        topics are read to their end, so the first records already find their users and services, and
        the first SLI steps their SLOs and maintenance windows; later updates apply as they arrive."""
        await self.joined.wait()
        try:
            await asyncio.wait_for(
                asyncio.gather(*(f.ready.wait() for f in self.followers)), self.config.worker.context_wait_s
            )
        except TimeoutError:
            log.warning(
                "context topics not loaded after %ss; enriching with what is there",
                self.config.worker.context_wait_s,
            )
        self.context_waited = True

    def pace_inputs(self, caught_up: Mapping[str, bool]) -> None:
        """Pause the input partitions read too far ahead, resume those no longer: the metrics ones ahead
        of the others (app/alignment.py), and every spans partition while the spans outrun the logs
        (`has_room`). Every tick: Faust's own flow control can resume a partition we paused.

        The logs partitions are not paused while the logs outrun the spans: a held log waits at least
        the wall-clock grace, so the hold stays over its bound for seconds, and the two inputs then took
        turns in steps of one tick (a 500k-span backlog under memray: 1,137 of 1,230 messages out after
        240 s). The logs agent's own wait, which ends at its full buffer, bounds them well enough."""
        if not self.core_ready():
            return
        consumer, core, topics = self._app.consumer, self.core(), self.config.topics
        assigned = {_source_name(tp): tp for tp in consumer.assignment()}
        lead_ms = int(self.config.worker.metrics_partition_lead_s * 1000)
        ahead = metrics_ahead(topics.input(Signal.METRICS), lead_ms, caught_up, core.read_to)
        spans = of_topic(topics.input(Signal.TRACES), assigned) if core.spans_outrun_logs() else {}
        paused = {
            Signal.METRICS: {assigned[name] for name in ahead if name in assigned},
            Signal.TRACES: set(spans.values()),
        }
        now_paused = set().union(*paused.values())
        resumed = (set().union(*self.paused.values()) - now_paused) & set(assigned.values())
        if resumed:
            consumer.resume_partitions(resumed)
        if now_paused:
            _pause_partitions(consumer, now_paused)
        self.paused = paused

    async def has_room(self, signal: Signal, stream: StreamT) -> None:
        """Before an ingest agent processes a run, wait while its input is read too far ahead of the
        other's: the logs while they fill the enrichment hold ahead of a spans backlog
        (`Core.logs_outrun_spans`), the spans while they would push traces whose logs are still to come
        out of the trace-context table (`Core.spans_outrun_logs`). The two exclude each other, so
        neither waits for the other. `pace_inputs` pauses the spans partitions meanwhile, so that what
        waits is only what was fetched before.

        Each wait ends when the agent's own stream buffer is full. Faust's conductor hands the records
        of a fetch to their streams one after another and waits at a full buffer, so the records
        behind it would wait for this agent, and those that end its wait would never come (seen: a
        500k-span backlog with 32-message buffers stopped with 58 of 1,230 messages out, the conductor
        waiting on the logs buffer)."""
        if not self.core_ready() or signal is Signal.METRICS:
            return
        core, buffer = self.core(), stream.channel.queue
        ahead = core.spans_outrun_logs if signal is Signal.TRACES else core.logs_outrun_spans
        while ahead() and not buffer.full():
            await asyncio.sleep(_HOLD_POLL_S)

    async def start_agent(self, stream: StreamT) -> None:
        """Before an agent takes input: its records are held until our code releases them
        (app/commits.py), and the tables' changelog topics exist (app/tables.py)."""
        if not self._guard_installed:
            self.commit_guard.install(self._app.consumer)
            self._guard_installed = True
        self.commit_guard.watch(stream)
        await await_changelog_topics(self._app, (self._trace_context, self._sli_state))

    def delivery(self) -> Delivery:
        delivery = Delivery(self.config.kafka.producer_config(), self.config.worker.delivery_timeout_s)
        self._deliveries.append(delivery)
        return delivery

    async def flush_deliveries(self) -> None:
        """At a graceful stop, once the consumer has stopped (Faust's `on_before_shutdown`, where it
        flushes its own producer): what the agents produced reaches the broker. Their input is not
        committed unless delivered, so this saves work, and it writes the changelog records of a step
        whose incident events went out just before the stop (the restart then knows the open page
        instead of triggering it again)."""
        for delivery in self._deliveries:
            await asyncio.to_thread(delivery.close)

    # Built on first use: agents and timers run only after Faust has recovered the tables, and the
    # analysis reads its state from them when built. The core is built in `create_app`, before that;
    # its trace-context index is rebuilt after each recovery.
    def core(self) -> Core:
        if self._core is None:
            self._core = Core(
                self.config, trace_store=self._trace_context, users=self._users, services=self._services
            )
        return self._core

    def core_ready(self) -> bool:
        return self._core is not None

    def analysis(self) -> Analysis:
        if self._analysis is None:
            self._analysis = Analysis(
                self.config,
                services=self._services,
                store=self._sli_state,
                persist_interval_ms=int(self.config.worker.sli_persist_interval_s * 1000),
            )
            self._analysis.adopt(self.owns_service)
            self._analysis.set_maintenance(self.maintenance.windows())
        return self._analysis

    def owns_service(self, service: str) -> bool:
        """Whether the service's `sli-partials` partition (murmur2 of its name, as the producers and
        the table's changelog place it) is assigned to this worker. The memory table keeps keys this
        worker wrote after their partition moves away; they must not come back to life."""
        partition = key_partition(service, self.config.worker.table_partitions)
        return TP(self.config.topics.sli_partials, partition) in self._app.consumer.assignment()

    def analysis_ready(self) -> bool:
        return self._analysis is not None

    def sli_state_pending(self) -> bool:
        """Whether the analysis is due before any partial comes: the table recovered the state of a
        service this worker owns, and the SLOs and maintenance windows are read. A worker restarted
        after a crash can find every partial processed and committed, with the last steps still to be
        evaluated once the input is idle; built on the first partial only, the analysis never came
        and those snapshots were never sent. On a new deployment (an empty table) it still waits for
        the first partial: an idle analysis with no state would move the watermark to the wall clock
        and make a backlog published later late."""
        return self.context_waited and any(self.owns_service(service) for service in self._sli_state)

    async def advance_sli(self, delivery: Delivery, now_ms: int, *, idle: bool = False) -> None:
        """Evaluate the steps the watermark passed and send their snapshots; once the analysis has
        persisted its state (its policy), acknowledge the partials it holds."""
        # One at a time (the SLI agent and the tick both advance): another advance writing the state
        # while these snapshots are in flight would undo the order below.
        async with self._advancing:
            analysis = self.analysis()
            step = analysis.advance(now_ms, idle=idle, write=False)
            # What `step.persisted` speaks for: the SLI agent adds partials (and their records here)
            # while the snapshots are sent below, and those are in no written state yet.
            covered = len(self.sli_unacked)
            # Snapshots and incident events are delivered before the state that produced them is written:
            # a crash in between re-evaluates those steps and sends them again, identical, with the same
            # event ids. Written first, its changelog record can be out before a SIGKILL that stops the
            # send halfway, and the restart resumes after steps never sent (seen: 53 steps of every
            # service lost in a backlog).
            await delivery.send(self.snapshot_records(step.snapshots) + self.incident_records(step.incidents))
            unacked: list[tuple[StreamT, EventT]] = []
            if step.persist_due:
                analysis.persist(now_ms)  # everything applied so far, what came during the send too
                unacked, self.sli_unacked = self.sli_unacked, []
                # Its changelog records before the partials it covers are acknowledged.
                await delivery.send(self.changelog_records())
            elif step.persisted:
                # Only the records taken before the step: acknowledging those added during the send
                # committed partials no written state held (seen: a SIGKILL then lost two log buckets).
                unacked, self.sli_unacked = self.sli_unacked[:covered], self.sli_unacked[covered:]
        for stream, event in unacked:
            await self.commit_guard.release(stream, event)

    async def emit(self, result: CoreResult, delivery: Delivery) -> None:
        await self.delivered(result, await delivery.produce(self.outbound(result)), delivery)

    async def delivered(self, result: CoreResult, sending: Sending, delivery: Delivery) -> None:
        """Once the result's outputs are acknowledged, release the inputs it finished."""
        await delivery.acknowledged(sending)
        for record in result.finished:
            stream, event = record.ref
            await self.commit_guard.release(stream, event)
        self.metrics.count(result)

    def outbound(self, result: CoreResult) -> list[OutboundRecord]:
        topics = self.config.topics
        outbound: list[OutboundRecord] = []
        for clean in result.clean:
            headers = _headers_of(clean.origin)
            outbound.append(
                OutboundRecord(
                    topics.clean(clean.signal),
                    clean.key,
                    clean.value,
                    headers,
                    if_too_large=self.dlq_record(clean.origin, "output too large", omit_value=True),
                )
            )
        for rejected in result.dlq:
            outbound.append(self.dlq_record(rejected.origin, rejected.reason))
        by_service: dict[str, list[SliPartial]] = {}
        for partial in result.partials:
            by_service.setdefault(partial.service, []).append(partial)
        for service, partials in by_service.items():
            outbound.append(OutboundRecord(topics.sli_partials, service.encode(), encode_partials(partials)))
        outbound.extend(self.progress.after_batch(result.partials))  # after the partials, on every partition
        # The table writes that made `result` (taken before the caller's next await): delivered with
        # its outputs, so its input is released only once they are in the changelog.
        outbound.extend(self.changelog_records())
        return outbound

    def changelog_records(self) -> list[OutboundRecord]:
        return self._trace_context.take_changes() + self._sli_state.take_changes()

    def dlq_record(self, origin: InputRecord, reason: str, omit_value: bool = False) -> OutboundRecord:
        """The input unchanged, with the reason and its source in headers. Too large for the DLQ (or
        `omit_value`), it goes as a reference: no value, its size in `value.omitted.bytes`, so an
        operator finds the original at source.topic/partition/offset while the input topic retains it."""
        topic, partition, offset = _coordinates(origin)
        headers = [
            *(_headers_of(origin) or []),
            ("source.topic", topic.encode()),
            ("source.partition", str(partition).encode()),
            ("source.offset", str(offset).encode()),
        ]
        dlq = self.config.topics.dlq
        reference = OutboundRecord(
            dlq,
            origin.key,
            b"",
            [
                *headers,
                ("error", f"{reason}; the value ({len(origin.value)} bytes) is too large, left out".encode()),
                ("value.omitted.bytes", str(len(origin.value)).encode()),
            ],
        )
        if omit_value:
            return reference
        headers.append(("error", reason.encode()))
        return OutboundRecord(dlq, origin.key, origin.value, headers, if_too_large=reference)

    def snapshot_records(self, snapshots: Iterable) -> list[OutboundRecord]:
        topic = self.config.topics.sli
        return [OutboundRecord(topic, s.service.encode(), s.to_json_bytes()) for s in snapshots]

    def incident_records(self, events: Iterable[IncidentEvent]) -> list[OutboundRecord]:
        """Keyed by dedup_key, with CloudEvents binary-mode headers."""
        topic, source = self.config.topics.incidents, self.config.detection.incidents.source
        return [
            OutboundRecord(topic, event.dedup_key.encode(), event.to_json_bytes(), event.headers(source))
            for event in events
        ]


class _Sources:
    """Which of this worker's input partitions (the three signals' topics) are caught up, for the
    watermark and the enrichment hold, and which inputs are live (the spans' wait for the logs is for
    backlogs). A partition is caught up when every record before its end offset is processed, and,
    for the SLIs, its partials have reached the engine: every assigned `sli-partials` partition is
    processed to an end offset read after that. Processed means by the agents (not merely fetched),
    counting from the committed offset at start.

    End offsets come from the fetcher's last response for the partition (aiokafka's `highwater`, free)
    when it is at most `_FETCH_FRESH_MS` old; only the others cost a broker round trip (ListOffsets,
    which took 2.7 s a tick when asked every tick in a backlog).
    Each look keeps the processed offsets it saw with its time: the partials of input processed at T
    were delivered before T, so an `sli-partials` end read at F covers the input as processed at the
    newest look at or before F."""

    def __init__(self, app: faust.App, config: PipelineConfig) -> None:
        self._app = app
        self._inputs = {config.topics.input(signal) for signal in Signal}
        self._partials_topic = config.topics.sli_partials
        self._next: dict[TP, int] = {}  # per partition: the offset after the last one processed
        self._looks: deque[tuple[int, dict[TP, int]]] = deque(maxlen=64)  # (wall ms, processed), newest last
        self._last: dict[str, bool] = {}
        self._last_sli: dict[str, bool] = {}
        self._unread: dict[TP, int] = {}  # per input partition: records still to read, as of the last look

    def processed(self, events: Iterable[EventT]) -> None:
        for event in events:
            message = event.message
            tp = message.tp
            self._next[tp] = max(self._next.get(tp, 0), message.offset + 1)

    def declared(self) -> dict[str, bool]:
        """Every assigned input partition with whether it is caught up for the SLIs as of the last look
        (one assigned since: not), for the engine before it takes partials."""
        assigned = self._app.consumer.assignment()
        names = (_source_name(tp) for tp in assigned if tp.topic in self._inputs)
        return {name: self._last_sli.get(name, False) for name in names}

    def every_input(self) -> list[str]:
        """Every partition of the input topics, this worker's or another's (the group's metadata)."""
        counts = {topic: self._app.consumer.topic_partitions(topic) or 0 for topic in sorted(self._inputs)}
        return [f"{topic}[{partition}]" for topic, count in counts.items() for partition in range(count)]

    def channels(self) -> list[str]:
        """The assigned `sli-partials` partitions: the SLI engine's channels (`SliEngine.set_sources`)."""
        assigned = self._app.consumer.assignment()
        return sorted(_source_name(tp) for tp in assigned if tp.topic == self._partials_topic)

    async def caught_up(self) -> tuple[dict[str, bool], dict[str, bool]]:
        """Per assigned input partition ("topic[partition]"): whether it is processed to its end, and
        whether its partials are applied too (for the SLIs). On a broker error, the last answer (a stale
        answer only holds the watermark or a message longer)."""
        consumer = self._app.consumer
        assigned = consumer.assignment()
        inputs = sorted(tp for tp in assigned if tp.topic in self._inputs)
        partials = sorted(tp for tp in assigned if tp.topic == self._partials_topic)
        if not inputs:
            return {}, {}  # not assigned yet, or nothing of the input here
        now = _now_ms()
        processed = {tp: self._processed(tp) for tp in inputs}  # before any end offset is read
        self._looks.append((now, processed))
        try:
            ends = await self._end_offsets([*inputs, *partials], now)
        except Exception as exc:  # the broker is away: keep the last answer
            log.warning("end offsets not read (%s); input progress unchanged", type(exc).__name__)
            return self._last, self._last_sli
        partials_read = all(self._processed(tp) >= ends[tp][0] for tp in partials)
        covered_at = min((ends[tp][1] for tp in partials), default=now)
        covered = next((look for at, look in reversed(self._looks) if at <= covered_at), {})
        self._unread = {tp: ends[tp][0] - processed[tp] for tp in inputs}
        self._last = {_source_name(tp): unread <= 0 for tp, unread in self._unread.items()}
        self._last_sli = {
            _source_name(tp): partials_read and covered.get(tp, -1) >= ends[tp][0] for tp in inputs
        }
        return self._last, self._last_sli

    def live(self, topic: str) -> bool:
        """Whether each of this worker's partitions of `topic` had at most one record still to read (the
        one that has just come) at the last look; False before any look or with none assigned."""
        unread = [count for tp, count in self._unread.items() if tp.topic == topic]
        return bool(unread) and max(unread) <= 1

    async def _end_offsets(self, tps: list[TP], now_ms: int) -> dict[TP, tuple[int, int]]:
        """Per partition: its end offset and the wall time (ms) it is known to hold from."""
        ends: dict[TP, tuple[int, int]] = {}
        for tp in tps:
            end, fetched_ms = self._fetched_end(tp)
            if end is not None and fetched_ms is not None and now_ms - fetched_ms <= _FETCH_FRESH_MS:
                # Stamped when the consumer thread handled the response, after the broker measured the
                # end (up to the fetch wait before, more under load): only what was written that much
                # earlier is known to be covered.
                ends[tp] = (end, fetched_ms - _FETCH_STAMP_MARGIN_MS)
        ends.update(await self._listed_ends([tp for tp in tps if tp not in ends]))
        return ends

    async def _listed_ends(self, tps: list[TP]) -> dict[TP, tuple[int, int]]:
        """End offsets asked of the broker (ListOffsets), each with the wall time the request was made:
        the answer holds at least what was written before it."""
        if not tps:
            return {}
        asked_ms = _now_ms()
        listed = await self._app.consumer.highwaters(*tps)
        return {tp: (listed.get(tp, 0), asked_ms) for tp in tps}

    def _fetched_end(self, tp: TP) -> tuple[int | None, int | None]:
        """The end offset in the fetcher's last response for `tp`, and that response's wall time (ms)."""
        try:
            client = self._app.consumer._thread._ensure_consumer()  # aiokafka's, in Faust's consumer thread
            return client.highwater(tp), client.last_poll_timestamp(tp)
        except (AssertionError, ConsumerNotStarted):  # not assigned to aiokafka (yet, or any longer)
            return None, None

    def _processed(self, tp: TP) -> int:
        committed = self._app.consumer._committed_offset.get(tp) or 0
        return max(self._next.get(tp, 0), committed)


def _pause_partitions(consumer, tps: set[TP]) -> None:
    """Faust's `pause_partitions`, without dropping records. It removes the partitions from the very set
    a `getmany` in progress filters the records it hands out by, so that fetch's remaining records of
    them are skipped while aiokafka's position is past them already: later records bring them back as
    a gap (app/ordering.py), but a partition's last records never come (seen: 2 metrics records at the
    end of a 1M-span backlog, the worker idle with them unread). A new set leaves the fetch in progress
    its own."""
    consumer._paused_partitions.update(tps)
    consumer._active_partitions = consumer._get_active_partitions() - tps


def _source_name(tp: TP) -> str:
    return f"{tp.topic}[{tp.partition}]"


def _headers_of(record: InputRecord) -> list[tuple[str, bytes]] | None:
    _stream, event = record.ref
    headers = event.message.headers
    if not headers:
        return None
    return list(headers.items()) if isinstance(headers, dict) else list(headers)


def _coordinates(record: InputRecord) -> tuple[str, int, int]:
    message = record.ref[1].message
    return message.topic, message.partition, message.offset


def run_worker(config: PipelineConfig, loglevel: str = "info") -> None:
    """Run the worker until SIGTERM/SIGINT; Faust stops agents, commits, and exits. Raises
    ChangelogPartitionsMismatch before starting if a table's changelog has the wrong partition count."""
    from faust.worker import Worker

    app = create_app(config)
    changelogs = [table.changelog_topic.get_topic_name() for table in app.tables.values()]
    check_changelog_partitions(
        config.kafka, changelogs, config.worker.table_partitions, config.worker.startup_timeout_s
    )
    # aiokafka builds DEBUG records per fetch even when nothing prints them (2.5% of worker CPU).
    quiet_level = max(logging.getLevelNamesMapping()[loglevel.upper()], logging.INFO)
    for noisy in ("aiokafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(quiet_level)
    class _Worker(Worker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            lograte.install(config.worker.log_repeat_interval_s)

    freeze_startup_objects()
    _Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
